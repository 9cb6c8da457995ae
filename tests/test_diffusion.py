"""The diffusion family: a tiny DDPM (diffusers UNet) trains, samples through the generator protocol, is
scored, and rebuilds from its spec."""

import json
import re
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from prunegen.deploy.compact import load_compact, save_compact
from prunegen.generator import build_from_spec, generator_spec, max_abs_diff, sample_generator
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
    assert record["metrics"]["sampler_steps"] == 3 and record["metrics"]["sampling_images_per_s"] > 0
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


TINY_COMPRESS = [*TINY_DDPM, "experiment=compress_ddpm_digits", "data.image_size=16", "data.batch_size=16",
                 "trainer.limit_train_batches=2", "metrics.num_samples=16", "metrics.batch_size=16",
                 "callbacks.sample_grid=null", "pruning.start_epoch=0", "pruning.end_epoch=0",
                 "export.batch_size=2", "export.repeats=1"]
TINY_COMPRESS_NO_EXPORT = [o for o in TINY_COMPRESS if not o.startswith("export.")] + ["export=none"]


def test_denoising_distiller_compares_eps_on_the_same_noisy_images(make_cfg):
    from prunegen.distill import DenoisingDistiller
    from prunegen.masks import unmasked_copy

    torch.manual_seed(0)
    teacher = instantiate(make_cfg(*TINY_DDPM, tiny=False).model.generator).eval()
    student = unmasked_copy(teacher)
    d = DenoisingDistiller(teacher, output_loss="mse", feature_weight=1.0)
    x_t, t = torch.randn(4, 1, 16, 16), torch.tensor([0, 10, 500, 999])
    loss, eps, logs = d.loss(student, x_t, t)
    assert loss.item() == 0 and eps.shape == x_t.shape
    with torch.no_grad():
        student.unet.conv_in.weight.mul_(0.5)
    loss, eps, logs = d.loss(student, x_t, t)
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(student.eps(x_t, t), teacher.eps(x_t, t))
    assert torch.allclose(logs["distill/output"], expected) and logs["distill/features"] > 0
    loss.backward()  # the student (not the frozen teacher) gets the gradient
    assert student.unet.conv_in.weight.grad.abs().sum() > 0 and teacher.unet.conv_in.weight.grad is None


def test_compress_ddpm_pipeline_end_to_end(make_cfg, tmp_path):
    """Dense epoch, one pruning round, a distilled fine-tuning epoch beside the denoising loss, export, scores."""
    cfg = make_cfg(*TINY_COMPRESS, "trainer.max_epochs=2", tiny=False)
    record, objects = train(cfg)
    assert record["status"] == "completed", record.get("error")
    assert record["model"]["family"] == "diffusion" and abs(record["pruning"]["achieved_sparsity"] - 0.5) < 0.05
    assert record["distill"]["started_epoch"] == 1 and record["distill"]["denoising_weight"] == 1.0
    model, teacher = objects["model"], objects["distill"].teacher
    assert model.base_loss_weight == 1.0 and all(not p.requires_grad for p in teacher.parameters())
    assert {"fid", "class_coverage"} <= set(record["dense_metrics"]) and record["metrics"]["fid"] > 0
    (round_,) = record["pruning"]["rounds"]  # experiment=compress_ddpm_digits: structured, diff_pruning
    assert record["pruning"]["criterion"] == "diff_pruning" and round_["timesteps"] >= 1 and round_["batch"] == 16
    export = record["export"]
    assert export["max_abs_diff"] <= 1e-5 and export["compact"]["sampler_steps"] == 3
    assert export["compact"]["macs"] == 3 * export["compact"]["macs_per_step"]
    assert export["dense"]["macs_per_step"] / export["compact"]["macs_per_step"] > 3  # half the channels of most convs
    for name in ("metrics.json", "export.json", "generator_compact.pt"):
        assert (tmp_path / "run" / name).exists(), name
    small = load_compact(tmp_path / "run" / "generator_compact.pt")  # weights_only, rebuilt from its shapes
    assert max_abs_diff(model.generator, small) <= 1e-5
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    exported = json.loads((tmp_path / "run" / "export.json").read_text())
    metrics_keys, export_keys = stable_keys()
    assert metrics_keys and export_keys
    assert [k for k in metrics_keys if not has_key(on_disk, k)] == []  # docs/records.md's stable keys are there
    assert [k for k in export_keys if not has_key(exported, k)] == []
    for key in ("macs_per_step", "sampler_steps", "latency_ms_per_image"):  # and the diffusion ones it lists
        assert has_key(exported, f"compact.{key}") and has_key(exported, f"dense.{key}")
    assert has_key(on_disk, "metrics.sampler_steps") and has_key(on_disk, "metrics.sampling_images_per_s")


def stable_keys() -> tuple[list[str], list[str]]:
    """The keys docs/records.md marks **stable**, of metrics.json (prunegen-train) and of export.json."""
    text = (Path(__file__).parents[1] / "docs" / "records.md").read_text()
    train = text.split("## `metrics.json` (prunegen-train)")[1].split("## `export.json`")[0]
    export = text.split("## `export.json`")[1].split("## `metrics.json` (prunegen-eval)")[0]
    find = lambda part: re.findall(r"`([a-z_.]+)` \*\*stable\*\*", part)  # noqa: E731
    return find(train), find(export)


def has_key(record: dict, dotted: str) -> bool:
    node = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_training_step_adds_the_distillation_term_on_its_own_noisy_images(make_cfg):
    """The DDPM's loss is base weight x the denoising loss + the term, both on the same (x_t, t, noise)."""
    from prunegen.distill import DenoisingDistiller

    cfg = make_cfg(*TINY_DDPM, tiny=False)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    teacher = instantiate(cfg.model.generator).eval()  # another init: the term is not zero
    model.add_generator_loss(DenoisingDistiller(teacher, output_loss="mse", output_weight=2.0))
    images = torch.rand(4, 1, 16, 16) * 2 - 1

    def expected(base_weight):
        torch.manual_seed(1)  # the training step's draws, in its order: timesteps, then noise
        t = torch.randint(0, 1000, (4,))
        noise = torch.randn_like(images)
        x_t = model.noise_scheduler.add_noise(images, noise, t)
        eps = model.generator.eps(x_t, t)
        distill = torch.nn.functional.mse_loss(eps, teacher.eps(x_t, t))
        return base_weight * torch.nn.functional.mse_loss(eps, noise) + 2.0 * distill

    for base_weight in (1.0, 0.0):
        model.set_base_loss_weight(base_weight)
        torch.manual_seed(1)
        with torch.no_grad():
            total = model.training_step((images, torch.zeros(4)), 0)
            assert torch.allclose(total, expected(base_weight), atol=1e-6), base_weight


def test_resumed_ddpm_compression_equals_uninterrupted(make_cfg, tmp_path):
    """Dense epoch, pruning round, distilled epochs with an EMA: a run stopped after two epochs and resumed from
    its checkpoint ends with the masks, weights, EMA and teacher of an uninterrupted run. (The "kill" is a
    shorter max_epochs, as in test_resume.)"""
    common = [*TINY_COMPRESS_NO_EXPORT, "model.ema_decay=0.9"]
    runs = {}
    for name, extra in [("full", ["trainer.max_epochs=3"]), ("part", ["trainer.max_epochs=2"]),
                        ("resumed", ["trainer.max_epochs=3", f"ckpt_path={tmp_path / 'part' / 'checkpoints' / 'last.ckpt'}"])]:
        cfg = make_cfg(*common, *extra, tiny=False)
        cfg.paths.output_dir = str(tmp_path / name)
        runs[name] = train(cfg)[1]
    full, resumed = runs["full"], runs["resumed"]
    for module in ("generator", "ema"):
        a, b = getattr(full["model"], module).state_dict(), getattr(resumed["model"], module).state_dict()
        assert a.keys() == b.keys() and any(k.endswith("weight_mask") for k in a) == (module == "generator")
        for key in a:
            assert torch.allclose(a[key], b[key], atol=1e-6), f"{module}.{key}"
    a, b = full["distill"].teacher.state_dict(), resumed["distill"].teacher.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(full["model"].generator.unet.conv_in.weight_orig, runs["part"]["model"].generator.unet.conv_in.weight_orig)


def test_int8_export_of_a_unet_is_refused_before_training(make_cfg, tmp_path):
    cfg = make_cfg(*TINY_COMPRESS, "export.quantize=int8", tiny=False)
    with pytest.raises(ValueError, match="export.quantize: int8 .* diffusion UNet .* export.quantize=none"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing trained
