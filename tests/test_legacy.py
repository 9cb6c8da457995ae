"""Files users already have, written before the modules moved (tests/fixtures/legacy/, see its README), still
load, export and resume: a structurally pruned checkpoint, and a run folder stopped by SIGTERM mid-schedule."""

import json
import shutil
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from prunegen import CONFIG_DIR
from prunegen.deploy.compact import load_compact
from prunegen.deploy.export import export
from prunegen.run.checkpoint import load_model
from prunegen.train import train

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
HALF_RUN = json.loads((LEGACY / "half_run" / "OVERRIDES.json").read_text())


def _masks(generator: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.detach().clone() for name, b in generator.named_buffers() if name.endswith("_mask")}


def _record(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _export_cfg(ckpt: Path, out: Path):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("export", overrides=[f"ckpt_path={ckpt}", "repeats=2", "batch_size=16"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.paths.cache_dir = str(out.parent / "cache")
    return cfg


def test_fixtures_are_legacy_files():
    """The fixtures were written by the old layout (prunegen.rng, prunegen.reporting.*): they are not to be
    regenerated with newer code."""
    stored = torch.load(LEGACY / "structured.ckpt", map_location="cpu", weights_only=True)
    assert stored["prunegen"]["config"]["callbacks"]["rng_state"]["_target_"] == "prunegen.rng.RNGStateCallback"
    assert "_target_: prunegen.rng.RNGStateCallback" in (LEGACY / "half_run" / ".hydra" / "config.yaml").read_text()
    assert (LEGACY / "half_run" / "checkpoints" / "last.ckpt").is_file()  # the relative link resolves


def test_legacy_structured_checkpoint_loads_and_exports(tmp_path):
    ckpt = tmp_path / "elsewhere" / "structured.ckpt"  # no run folder beside it: the checkpoint carries its config
    ckpt.parent.mkdir()
    shutil.copyfile(LEGACY / "structured.ckpt", ckpt)
    model, run_cfg = load_model(ckpt)
    assert run_cfg.pruning.granularity == "structured" and run_cfg.pruning.final_sparsity == 0.5

    masks = _masks(model.generator)
    stored = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    expected = {k.removeprefix("generator."): v for k, v in stored.items() if k.startswith("generator.") and k.endswith("_mask")}
    assert expected and masks.keys() == expected.keys()
    for name in masks:
        assert torch.equal(masks[name], expected[name]), name
    channels = [m for m in masks.values() if m.dim() == 1]  # batch norms: one entry per channel
    assert channels and all(0 < (m == 0).sum() < m.numel() for m in channels)
    convs = [m for m in masks.values() if m.dim() == 4]
    assert convs and all((m.flatten(1) == 0).all(1).any() or (m.transpose(0, 1).flatten(1) == 0).all(1).any()
                         for m in convs)  # whole channel groups masked, not scattered weights

    torch.manual_seed(0)
    z = torch.randn(8, model.generator.latent_dim)
    with torch.no_grad():
        images = model.generator(z)
    assert images.shape == (8, 1, 16, 16) and torch.isfinite(images).all()

    result = export(_export_cfg(ckpt, tmp_path / "export"))
    on_disk = json.loads((tmp_path / "export" / "export.json").read_text())
    assert on_disk["max_abs_diff"] <= 1e-5
    assert on_disk["compact"]["macs"] < on_disk["dense"]["macs"] / 3
    small = load_compact(result["compact"]["path"])
    with torch.no_grad():
        assert torch.allclose(small(z), images, atol=1e-5)


def test_legacy_interrupted_run_resumes_to_the_uninterrupted_result(make_cfg, tmp_path):
    spec = [*HALF_RUN["tiny"], *HALF_RUN["overrides"]]  # as composed when the fixture was written
    full_cfg = make_cfg(*spec, tiny=False)
    full_cfg.paths.output_dir = str(tmp_path / "full")
    full, full_objects = train(full_cfg)
    assert full["status"] == "completed"

    run = tmp_path / "half_run"
    shutil.copytree(LEGACY / "half_run", run, symlinks=True)  # checkpoints/last.ckpt: a relative link, kept so
    legacy = _record(run)
    assert legacy["status"] == "interrupted" and legacy["last_epoch"] == HALF_RUN["interrupted"]["last_epoch"]

    cfg = make_cfg(*spec, tiny=False)  # the same command, in the legacy folder
    cfg.paths.output_dir = str(run)
    record, objects = train(cfg)
    assert record["status"] == "completed"
    assert record["resumed_from"] == str(run / "checkpoints" / "last.ckpt")
    assert [a["status"] for a in record["attempts"]] == ["interrupted", "completed"]
    assert record["attempts"][0] == legacy["attempts"][0]  # the legacy attempt is kept as it was
    assert _record(run)["status"] == "completed"

    masks, full_masks = _masks(objects["model"].generator), _masks(full_objects["model"].generator)
    assert masks and masks.keys() == full_masks.keys()
    for name in masks:
        assert torch.equal(masks[name], full_masks[name]), name
    assert record["pruning"]["rounds"] == full["pruning"]["rounds"]  # the legacy rounds come back with the callback state
    assert record["pruning"]["achieved_sparsity"] == full["pruning"]["achieved_sparsity"]
    assert record["metrics"]["fid"] == full["metrics"]["fid"]  # bit for bit on the CPU


def test_a_compress_run_folder_from_before_the_flat_configs_keeps_its_identity(make_cfg):
    """A structured + distillation run stored `distill.snapshot_epoch` as an interpolation into the pruning
    group and the threshold keys structured.yaml inherited; both mean what the flat configs mean now."""
    from omegaconf import OmegaConf

    from prunegen.run.lifecycle import identity_diff

    cfg = make_cfg("experiment=compress_digits", "pruning.final_sparsity=0.75")
    stored = OmegaConf.to_container(cfg, resolve=False)
    stored["distill"]["snapshot_epoch"] = "${oc.select:pruning.start_epoch,0}"
    stored["pruning"].update(amount="sparsity", alpha=1.0, reference="mean", max_sparsity=None)
    stored["callbacks"]["rng_state"]["_target_"] = "prunegen.rng.RNGStateCallback"
    assert identity_diff(stored, cfg) == []
    stored["pruning"]["alpha"] = 0.5  # a different value is a different run
    assert identity_diff(stored, cfg) == ["pruning.alpha: 0.5 -> '<unset>'"]
