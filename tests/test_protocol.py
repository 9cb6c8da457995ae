"""The generator protocol: every generator of every `model=` config (and the ResNet variants of the
sub-groups) rebuilds from its spec, round-trips through save_compact / load_compact, and compresses and
exports through `experiment=compress_digits model=NAME`."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from prunegen import CONFIG_DIR
from prunegen.data import DigitsDataModule, ImageData
from prunegen.deploy.compact import load_compact, save_compact
from prunegen.generator import Decoder, Generator, build_from_spec, check_generator, example_inputs, generator_spec, sample_generator
from prunegen.models.networks import ResNetGenerator

# the GAN and VAE families; the diffusion family (model=ddpm: a UNet sampled from noise) has tests/test_diffusion.py
MODELS = sorted(p.stem for p in Path(CONFIG_DIR, "model").glob("*.yaml") if p.stem != "ddpm")
VARIANTS = [(f"model={m}",) for m in MODELS] + [
    ("model=vae", "model/generator=resnet"),  # a ResNet VAE decoder
    ("model=cgan", "model/generator=resnet", "model/discriminator=resnet"),  # a conditional ResNet GAN
]
IDS = [" ".join(v).replace("model/", "").replace("model=", "") for v in VARIANTS]


def tiny_cfg(make_cfg, *overrides: str, **kwargs):
    """Tiny networks for any family: encoder or discriminator widths, whichever the model has."""
    cfg = make_cfg(*overrides, tiny=False)
    nets = ["model.encoder.nef=8"] if "encoder" in cfg.model else ["model.discriminator.ndf=8"]
    tiny = ["model.generator.ngf=8", "model.generator.latent_dim=8", "data.image_size=16", "logger=none",
            "trainer.enable_progress_bar=false", "metrics.num_samples=64", "metrics.batch_size=64", *nets]
    return make_cfg(*overrides, *tiny, tiny=False, **kwargs)


def _trained_bn(G: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm statistics away from their initial values, then eval mode (the deployed behaviour)."""
    G.train()
    with torch.no_grad():
        G(*example_inputs(G, 16, rng=torch.Generator().manual_seed(0)))
    return G.eval()


@pytest.mark.parametrize("overrides", VARIANTS, ids=IDS)
def test_generator_implements_the_protocol_and_round_trips(make_cfg, tmp_path, overrides):
    cfg = tiny_cfg(make_cfg, *overrides)
    G = _trained_bn(instantiate(cfg.model.generator))
    assert isinstance(G, Generator) and isinstance(G, Decoder)  # every generator can decode a VAE's logits
    assert G.num_classes == (10 if overrides[0] in ("model=cgan", "model=cvae") else 0)
    z, labels = example_inputs(G, 5, rng=torch.Generator().manual_seed(1))
    assert z.shape == (5, 8) and (labels is None) == (G.num_classes == 0)
    assert torch.allclose(torch.tanh(G.logits(z, labels)), G(z, labels), atol=1e-6)

    rebuilt = build_from_spec(generator_spec(G))
    assert type(rebuilt) is type(G)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in G.state_dict().items()}
    loaded = load_compact(save_compact(G, tmp_path / "g.pt"))  # weights_only=True
    assert torch.equal(loaded(z, labels), G(z, labels))


def test_resnet_spec_records_per_block_widths(tmp_path):
    widths = {"stem": 6, "blocks": [[3, 5], [7, 2]]}
    G = _trained_bn(ResNetGenerator(latent_dim=4, channels=3, image_size=16, num_classes=2, widths=widths))
    assert G.spec()["widths"] == widths and G(*example_inputs(G, 3)).shape == (3, 3, 16, 16)
    loaded = load_compact(save_compact(G, tmp_path / "g.pt"))
    z, labels = example_inputs(G, 4, rng=torch.Generator().manual_seed(0))
    assert loaded.spec() == G.spec() and torch.equal(loaded(z, labels), G(z, labels))
    with pytest.raises(ValueError, match="block widths"):
        ResNetGenerator(image_size=32, widths=widths)


def test_example_inputs_draws_like_the_samplers():
    G = ResNetGenerator(latent_dim=4, ngf=4, image_size=8, num_classes=3)
    z, labels = example_inputs(G, 7, rng=torch.Generator().manual_seed(5))
    assert torch.equal(z, torch.randn(7, 4, generator=torch.Generator().manual_seed(5)))
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    z0, zeros = example_inputs(G, 2, latents="zeros", labels="zeros")
    assert not z0.any() and zeros.tolist() == [0, 0]
    a = sample_generator(G, 7, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, G.eval()(z, labels))  # the sampler's latents and labels are the helper's
    with pytest.raises(ValueError, match="latents"):
        example_inputs(G, 2, latents="uniform")


def test_a_network_without_the_protocol_is_named():
    with pytest.raises(TypeError, match="missing \\['latent_dim', 'num_classes', 'spec'\\]"):
        check_generator(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="generator protocol"):
        generator_spec(torch.nn.Linear(2, 2))


def test_datamodules_implement_the_data_protocol():
    dm = DigitsDataModule(image_size=8)
    assert isinstance(dm, ImageData)
    assert (dm.name, dm.image_size, dm.channels, dm.num_classes) == ("digits", 8, 1, 10)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", VARIANTS, ids=IDS)
def test_compress_digits_compacts_and_exports_every_model(make_cfg, tmp_path, overrides):
    from prunegen.train import train

    cfg = tiny_cfg(make_cfg, "experiment=compress_digits", *overrides, "trainer.max_epochs=2",
                   "trainer.limit_train_batches=2", "pruning.start_epoch=0", "pruning.end_epoch=0",
                   "export.repeats=2", "export.batch_size=16")
    record, objects = train(cfg)
    assert record["status"] == "completed", record.get("error")
    export = record["export"]
    assert export["max_abs_diff"] <= 1e-5 and export["macs_ratio"] > 2
    G = objects["model"].generator.eval()  # masked (the EMA's weights when the GAN keeps one)
    small = load_compact(export["compact"]["path"])
    assert type(small) is type(G) and sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in G.parameters())
    z, labels = example_inputs(G, 8, rng=torch.Generator().manual_seed(0))
    assert torch.allclose(small(z, labels), G(z, labels), atol=1e-5)
