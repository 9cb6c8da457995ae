"""The model zoo: every model config trains on digits and on an image folder; losses, penalty, ELBO by hand."""

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from PIL import Image
from torch import nn
from torch.nn.utils import parametrize

from prunegen import CONFIG_DIR
from prunegen.masks import get_mask, is_masked, prunable_layers, restore_masks
from prunegen.models import losses
from prunegen.models.augment import cutout, diff_augment, parse_policy, translation
from prunegen.models.networks import (
    ConvEncoder,
    DCGANDiscriminator,
    DCGANGenerator,
    ResNetDiscriminator,
    ResNetGenerator,
)
from prunegen.models.vae import VAE
from prunegen.pruning import PruningCallback

GANS = ["dcgan", "lsgan", "wgan_gp", "sngan", "sngan_resnet", "cgan"]
VAES = ["vae", "beta_vae", "cvae"]
CONDITIONAL = {"cgan", "cvae"}
VAE_TINY = [
    "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "logger=none",
    "model.generator.ngf=8", "model.encoder.nef=8", "model.generator.latent_dim=8",
    "data.image_size=16", "data.batch_size=16", "metrics.num_samples=64", "metrics.batch_size=64",
]


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """Two label sub-folders of 12 small RGB PNGs each (dark 'a', bright 'b'), not square."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for label, (lo, hi) in {"a": (0, 100), "b": (155, 255)}.items():
        (root / label).mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(lo, hi, (20, 24, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


def _cfg(make_cfg, model: str, data: str, folder: Path):
    extra = [f"model={model}"]
    if data == "image_folder":
        extra += ["data=image_folder", f"data.root={folder}", "data.batch_size=8", "data.image_size=16"]
        extra += ["data.num_classes=2"] if model in CONDITIONAL else []
    if model in VAES:
        return make_cfg(*VAE_TINY, *extra, tiny=False)
    return make_cfg(*extra)


def _fit(model, dm) -> L.Trainer:
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        accelerator="cpu")
    trainer.fit(model, datamodule=dm)
    return trainer


@pytest.mark.parametrize("data", ["digits", "image_folder"])
@pytest.mark.parametrize("name", GANS + VAES)
def test_model_config_trains_and_samples(make_cfg, image_folder, name, data):
    cfg = _cfg(make_cfg, name, data, image_folder)
    L.seed_everything(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    before = [p.detach().clone() for p in model.generator.parameters()]
    _fit(model, dm)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))
    assert model.family == ("vae" if name in VAES else "gan") and model.name == name
    x = model.sample(6)
    assert x.shape == (6, dm.channels, 16, 16)
    assert x.min() >= -1 and x.max() <= 1
    assert model.num_classes == (dm.num_classes if name in CONDITIONAL else 0)


@pytest.mark.parametrize("name", sorted(CONDITIONAL))
def test_conditional_models_honour_labels(make_cfg, image_folder, name):
    model = instantiate(_cfg(make_cfg, name, "digits", image_folder).model)
    a = model.sample(4, labels=torch.zeros(4, dtype=torch.long), generator=torch.Generator().manual_seed(1))
    b = model.sample(4, labels=torch.ones(4, dtype=torch.long), generator=torch.Generator().manual_seed(1))
    c = model.sample(4, labels=torch.zeros(4, dtype=torch.long), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, c) and not torch.allclose(a, b)


def test_projection_discriminator_uses_labels():
    D = DCGANDiscriminator(ndf=4, channels=1, image_size=16, num_classes=3, spectral_norm=True, batch_norm=False)
    x = torch.randn(5, 1, 16, 16)
    assert not torch.allclose(D(x, torch.zeros(5, dtype=torch.long)), D(x, torch.full((5,), 2)))
    with pytest.raises(ValueError, match="needs labels"):
        D(x)


def test_conditional_model_on_unlabelled_data_is_a_clear_error(make_cfg, image_folder):
    with pytest.raises(Exception, match="num_classes"):
        instantiate(make_cfg("model=cgan", "data=image_folder", f"data.root={image_folder}").model)
    model = instantiate(make_cfg("model=cgan").model)  # 10 classes
    dm = instantiate(make_cfg("data=image_folder", f"data.root={image_folder}", "data.image_size=16").data)
    with pytest.raises(ValueError, match="conditional on 10 classes.*num_classes=2"):
        _fit(model, dm)


REAL, FAKE = torch.tensor([1.0, -2.0]), torch.tensor([0.5, -1.0])
SP = lambda v: math.log1p(math.exp(v))  # noqa: E731  softplus


@pytest.mark.parametrize("fn, args, expected", [
    (losses.d_nonsat, (REAL, FAKE), (SP(-1) + SP(2)) / 2 + (SP(0.5) + SP(-1)) / 2),
    (losses.g_nonsat, (FAKE,), (SP(-0.5) + SP(1)) / 2),
    (losses.d_lsgan, (REAL, FAKE), 0.5 * (0 + 9) / 2 + 0.5 * (0.25 + 1) / 2),
    (losses.g_lsgan, (FAKE,), 0.5 * (0.25 + 4) / 2),
    (losses.d_hinge, (REAL, FAKE), (0 + 3) / 2 + (1.5 + 0) / 2),
    (losses.d_wgan, (REAL, FAKE), -0.25 - (-0.5)),
    (losses.g_wgan, (FAKE,), 0.25),
])
def test_losses_match_hand_computed_values(fn, args, expected):
    assert fn(*args).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("scale, expected", [(1.0, 0.0), (3.0, 4.0)])
def test_gradient_penalty_of_linear_critic(scale, expected):
    torch.manual_seed(0)
    w = torch.randn(9)
    w = scale * w / w.norm()  # ||grad|| = scale everywhere
    critic = lambda x: x.flatten(1) @ w  # noqa: E731
    gp = losses.gradient_penalty(critic, torch.randn(8, 1, 3, 3), torch.randn(8, 1, 3, 3))
    assert gp.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("likelihood, beta", [("bernoulli", 4.0), ("gaussian", 1.0)])
def test_vae_elbo_is_recon_plus_beta_kl_by_hand(likelihood, beta):
    torch.manual_seed(0)
    enc, dec = ConvEncoder(latent_dim=4, nef=4, image_size=16), DCGANGenerator(latent_dim=4, ngf=4, image_size=16)
    model = VAE(enc, dec, optimizer=None, beta=beta, likelihood=likelihood, sigma=0.3).eval()
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    torch.manual_seed(1)
    terms = model.loss_terms(x, None)

    mu, logvar = enc(x)
    torch.manual_seed(1)
    z = mu + torch.randn_like(mu) * torch.exp(logvar / 2)
    mean = dec(z)  # tanh(a); for Bernoulli the pixel probability is (mean + 1) / 2
    if likelihood == "bernoulli":
        p, t = (mean + 1) / 2, (x + 1) / 2
        recon = -(t * p.log() + (1 - t) * (1 - p).log()).sum(dim=(1, 2, 3))
    else:
        recon = (0.5 * (x - mean) ** 2 / 0.3**2).sum(dim=(1, 2, 3))
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)
    assert terms["recon"].item() == pytest.approx(recon.mean().item(), rel=1e-4)
    assert terms["kl"].item() == pytest.approx(kl.mean().item(), rel=1e-4)
    assert terms["elbo"].item() == pytest.approx((recon + beta * kl).mean().item(), rel=1e-4)


def test_vae_trains_end_to_end_and_records_family(make_cfg, tmp_path):
    from prunegen.train import train

    record, _ = train(make_cfg(*VAE_TINY, "model=cvae", tiny=False))
    assert record["status"] == "completed" and record["model"] == {"name": "cvae", "family": "vae"}
    assert record["metrics"]["fid"] > 0 and record["generator"]["macs"] > 0


@pytest.mark.parametrize("image_size", [28, 32, 64])
def test_dcgan_sizes_including_28px(image_size):
    G = DCGANGenerator(latent_dim=8, ngf=4, channels=1, image_size=image_size)
    D = DCGANDiscriminator(ndf=4, channels=1, image_size=image_size)
    assert isinstance(G.net[0], nn.ConvTranspose2d) and G.net[0].kernel_size == ((7, 7) if image_size == 28 else (4, 4))
    x = G(torch.randn(3, 8))
    assert x.shape == (3, 1, image_size, image_size) and D(x).shape == (3,)
    assert ConvEncoder(latent_dim=5, nef=4, image_size=image_size)(x)[0].shape == (3, 5)


def test_resnet_networks_and_spectral_norm():
    G = ResNetGenerator(latent_dim=8, ngf=8, channels=3, image_size=32, num_classes=4)
    D = ResNetDiscriminator(ndf=8, channels=3, image_size=32, num_classes=4)
    y = torch.tensor([0, 1, 2])
    x = G(torch.randn(3, 8), y)
    assert x.shape == (3, 3, 32, 32) and x.abs().max() <= 1 and D(x, y).shape == (3,)
    convs = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert convs and all(parametrize.is_parametrized(m) for m in convs)
    plain = DCGANDiscriminator(ndf=4, image_size=16)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())


def test_diffaugment_keeps_shape_and_gradients():
    assert parse_policy("color, translation,cutout") == parse_policy(["color", "translation", "cutout"])
    assert parse_policy(None) == parse_policy("") == []
    with pytest.raises(ValueError, match="bogus"):
        parse_policy("color,bogus")
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, parse_policy("color,translation,cutout"))
    y.sum().backward()
    assert y.shape == x.shape and x.grad is not None and x.grad.abs().sum() > 0
    holes = (cutout(torch.ones(6, 1, 16, 16)) == 0).flatten(1).sum(1)
    assert (holes > 0).all() and (holes <= 64).all()
    shifted = translation(torch.ones(6, 1, 16, 16))
    assert ((shifted == 0) | (shifted == 1)).all()  # whole-pixel shifts, zero padding


def test_ema_stays_out_of_pruning_and_follows_masks(make_cfg):
    model = instantiate(make_cfg("model.ema_decay=0.9").model)
    assert "ema" in dict(model.named_children())
    assert "ema" not in dict(instantiate(make_cfg().model).named_children())  # off by default
    layers = prunable_layers(model, ["generator"])
    assert layers and all(path.startswith("generator.") for path in layers)
    PruningCallback(final_sparsity=0.5).prune(model, 0.5)
    model.sample(4)  # re-masks the EMA
    for path, layer in layers.items():
        ema_layer = model.ema.get_submodule(path.removeprefix("generator."))
        assert (ema_layer.weight[get_mask(layer) == 0] == 0).all()
        assert not is_masked(ema_layer)
    z = torch.randn(4, model.latent_dim)
    model.use_ema_weights()
    model.eval()
    assert torch.allclose(model.generator(z), model.ema(z))
    fresh = instantiate(make_cfg("model.ema_decay=0.9").model)
    restore_masks(fresh, model.state_dict())
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    assert torch.allclose(fresh.ema(z), model.ema(z))


def test_ema_averages_during_training(make_cfg):
    cfg = make_cfg("model.ema_decay=0.5", "model.diffaugment=[color,translation,cutout]")
    L.seed_everything(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    _fit(model, dm)
    g, e = dict(model.generator.named_parameters()), dict(model.ema.named_parameters())
    assert any(not torch.equal(g[k], e[k]) for k in g)
    assert all(not p.requires_grad for p in e.values())
    assert F.mse_loss(model.sample(4, generator=torch.Generator().manual_seed(0)),
                      model.sample(4, generator=torch.Generator().manual_seed(0))) == 0


def test_pruned_vae_checkpoint_loads_into_fresh_module(make_cfg, tmp_path):
    cfg = make_cfg(*VAE_TINY, "model=vae", tiny=False)
    L.seed_everything(0)
    model = instantiate(cfg.model)
    trainer = _fit(model, instantiate(cfg.data))
    PruningCallback(targets=["decoder"], final_sparsity=0.5).prune(model, 0.5)  # `decoder` is `generator`
    decoder_paths = {p.replace("generator", "decoder") for p in prunable_layers(model, ["generator"])}
    assert prunable_layers(model, ["decoder"]).keys() == decoder_paths
    trainer.save_checkpoint(tmp_path / "vae.ckpt")
    fresh = VAE.load_from_checkpoint(tmp_path / "vae.ckpt", encoder=instantiate(cfg.model.encoder),
                                     generator=instantiate(cfg.model.generator), optimizer=None, weights_only=False)
    z = torch.randn(3, model.latent_dim)
    model.eval(), fresh.eval()
    assert torch.equal(get_mask(fresh.generator.net[0]), get_mask(model.generator.net[0]))
    assert torch.allclose(fresh.generator(z), model.generator(z))


@pytest.mark.parametrize("experiment", sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("digits_*.yaml")))
def test_digits_experiments_compose_and_build(make_cfg, experiment):
    cfg = make_cfg(f"experiment={experiment}", tiny=False)
    model = instantiate(cfg.model)
    assert model.name == cfg.model.name and model.sample(2).shape == (2, 1, 32, 32)


EXPERIMENTS = sorted(str(p.relative_to(Path(CONFIG_DIR, "experiment")).with_suffix(""))
                     for p in Path(CONFIG_DIR, "experiment").rglob("*.yaml") if not p.name.endswith(".reference.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_builds_its_model(make_cfg, experiment):
    cfg = make_cfg(f"experiment={experiment}", tiny=False)
    if cfg.model.generator.get("pretrained"):  # Hub weights: the architecture is built here, nothing is downloaded
        cfg.model.generator.pretrained = None
    assert instantiate(cfg.model).name == cfg.model.name


def test_networks_are_sub_groups_of_the_model(make_cfg):
    cfg = make_cfg("model=dcgan", "model/generator=resnet", "model.generator.ngf=8", tiny=False)
    assert isinstance(instantiate(cfg.model).generator, ResNetGenerator)
    resnet, dcgan = make_cfg("model=sngan_resnet", tiny=False).model, make_cfg("model=dcgan", tiny=False).model
    assert resnet.loss == "hinge" and "gp_weight" not in resnet and resnet.n_critic == dcgan.n_critic
    assert make_cfg("model=wgan_gp", tiny=False).model.gp_weight == 10.0
