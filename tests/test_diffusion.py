"""The diffusion family: a tiny DDPM (diffusers UNet) trains, samples through the generator protocol, is
scored, and rebuilds from its spec."""

import torch
from hydra.utils import instantiate

from prunegen.deploy.compact import load_compact, save_compact
from prunegen.generator import build_from_spec, generator_spec, sample_generator
from prunegen.train import train

TINY_DDPM = ["model=ddpm", "model.generator.widths=[8,16]", "model.generator.norm_num_groups=4",
             "model.generator.sampler_steps=3", "data.image_size=16", "data.batch_size=16", "trainer.max_epochs=1",
             "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "logger=none",
             "metrics.num_samples=32", "metrics.batch_size=32", "callbacks.sample_grid.num_images=4"]


def test_unet_generator_is_deterministic_in_range_and_rebuilds_from_its_spec(make_cfg, tmp_path):
    cfg = make_cfg(*TINY_DDPM, tiny=False)
    torch.manual_seed(0)
    G = instantiate(cfg.model.generator).eval()
    assert G.latent_dim == 16 * 16 and G.num_classes == 0
    a = sample_generator(G, 3, generator=torch.Generator().manual_seed(1))
    b = sample_generator(G, 3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 1, 16, 16) and torch.equal(a, b) and a.abs().max() <= 1  # DDIM, eta 0: z decides
    loaded = load_compact(save_compact(G, tmp_path / "g.pt"))  # weights_only=True, rebuilt from its spec
    z = torch.randn(2, G.latent_dim)
    assert torch.equal(loaded(z), G(z)) and type(build_from_spec(generator_spec(G))) is type(G)


def test_tiny_ddpm_trains_samples_and_is_scored(make_cfg, tmp_path):
    cfg = make_cfg(*TINY_DDPM, tiny=False)
    import lightning as L

    L.seed_everything(cfg.seed)  # as train() does before it builds the data and the model
    instantiate(cfg.data)
    before = {k: v.clone() for k, v in instantiate(cfg.model).state_dict().items()}
    record, objects = train(cfg)
    model = objects["model"]
    assert record["status"] == "completed" and record["model"]["family"] == "diffusion"
    assert record["metrics"]["fid"] > 0 and record["metrics"]["num_samples"] == 32
    assert record["generator"]["macs"] > 0  # 3 DDIM steps of the UNet
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed  # the same (seeded) init as train()'s, then two optimizer steps moved it
    t = torch.tensor([0, 999])
    loss = model.denoising_loss(torch.zeros(2, 1, 16, 16), t, noise=torch.ones(2, 1, 16, 16))
    assert loss.ndim == 0 and loss > 0
    assert (tmp_path / "run" / "samples.png").exists()


def test_unstructured_pruning_masks_the_unet(make_cfg, tmp_path):
    cfg = make_cfg(*TINY_DDPM, "pruning=unstructured", "pruning.criterion=magnitude", "pruning.start_epoch=0",
                   "pruning.end_epoch=0", "pruning.final_sparsity=0.5", "metrics.num_samples=10", tiny=False)
    record, objects = train(cfg)
    assert record["status"] == "completed"
    assert abs(record["pruning"]["achieved_sparsity"] - 0.5) < 0.05
    masks = [m for m in objects["model"].generator.unet.modules() if hasattr(m, "weight_mask")]
    assert masks and all(0.3 < 1 - m.weight_mask.mean().item() < 0.7 for m in masks)  # per layer, on the UNet's convs
