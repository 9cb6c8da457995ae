import json
import shutil

import pytest
import torch
from hydra import compose, initialize_config_dir

from prunegen import CONFIG_DIR
from prunegen.deploy.compact import load_compact
from prunegen.deploy.export import export
from prunegen.train import train


def _export_cfg(ckpt, out, *overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("export", overrides=[f"ckpt_path={ckpt}", "repeats=2", "batch_size=16", *overrides])
    cfg.paths.output_dir = str(out)
    return cfg


@pytest.mark.parametrize("criterion", ["magnitude", "bn_scale"])
def test_structured_run_exports_a_compact_generator(make_cfg, tmp_path, criterion):
    cfg = make_cfg("pruning=structured", f"pruning.criterion={criterion}", "pruning.start_epoch=0",
                   "pruning.end_epoch=0", "pruning.final_sparsity=0.5", "model.generator.ngf=8")
    record, objects = train(cfg)
    assert record["generator"]["macs_effective"] < record["generator"]["macs"] / 3
    moved = tmp_path / "elsewhere" / "pruned.ckpt"  # the checkpoint carries its config: no run folder needed
    moved.parent.mkdir()
    shutil.copy(tmp_path / "run" / "checkpoints" / "last.ckpt", moved)

    result = export(_export_cfg(moved, tmp_path / "export"))
    on_disk = json.loads((tmp_path / "export" / "export.json").read_text())
    assert on_disk["max_abs_diff"] <= 1e-5
    assert on_disk["compact"]["macs"] == record["generator"]["macs_effective"]
    assert on_disk["macs_ratio"] == pytest.approx(record["generator"]["macs"] / record["generator"]["macs_effective"])
    for side in ("dense", "compact"):
        assert {"params", "macs", "latency_ms", "file_bytes"} <= set(on_disk[side])
    assert on_disk["compact"]["file_bytes"] < on_disk["dense"]["file_bytes"]

    small = load_compact(result["compact"]["path"])  # weights_only=True, without the training code
    model = objects["model"].eval()
    z = torch.randn(8, small.latent_dim)
    assert torch.allclose(small(z), model.generator(z), atol=1e-5)


def test_export_refuses_a_wrong_compaction(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg("pruning=structured", "pruning.start_epoch=0", "pruning.end_epoch=0")
    train(cfg)
    import prunegen.deploy.export as ex

    def broken(generator, ignore=()):
        g = ex.unmasked_copy(generator)
        with torch.no_grad():
            g.net[0].weight.add_(1.0)
        return g

    monkeypatch.setattr(ex, "compact", broken)
    with pytest.raises(RuntimeError, match="nothing written"):
        export(_export_cfg(tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "export"))
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["export.json"]  # no generator file
    on_disk = json.loads((tmp_path / "export" / "export.json").read_text())
    assert on_disk["status"] == "failed" and "tolerance" in on_disk["error"]
    assert [a["status"] for a in on_disk["attempts"]] == ["failed"]


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ckpt_path"):
        export(_export_cfg(tmp_path / "nope.ckpt", tmp_path / "export"))


def test_export_writes_into_the_checkpoints_run_folder_and_says_when_nothing_was_removed(make_cfg, tmp_path):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("export", overrides=[f"ckpt_path={tmp_path}/run/checkpoints/last.ckpt"], return_hydra_config=True)
        elsewhere = compose("export", overrides=[f"ckpt_path={tmp_path}/x.ckpt"], return_hydra_config=True)
    assert cfg.hydra.run.dir == str(tmp_path / "run" / "export")
    assert elsewhere.hydra.run.dir == str(tmp_path / "export")
    train(make_cfg())  # no pruning
    from prunegen.deploy.export import summary

    record = export(_export_cfg(tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "run" / "export"))
    assert record["macs_ratio"] == 1 and any("nothing was removed" in line for line in summary(record))
