"""Logs and summaries: a sweep ends with a summary; prunegen-export's console lands in export.log."""

import json
import subprocess
import sys
import time

from omegaconf import OmegaConf

from prunegen.run.sweep import SweepSummary, summarize


def _point(folder, status, started, error=None):
    folder.mkdir(parents=True)
    record = {"status": status, "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))}
    if error:
        record["error"] = error
    (folder / "metrics.json").write_text(json.dumps(record))


def test_a_sweep_ends_with_its_summary(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, "prunegen")
    now = time.time()
    callback = SweepSummary()
    callback.on_multirun_start(OmegaConf.create({}))
    _point(tmp_path / "a", "completed", now - 3600)  # from an earlier invocation: left alone
    _point(tmp_path / "b", "completed", now + 1)
    _point(tmp_path / "c", "failed", now + 2, "ValueError: pruning.criterion must be one of ...\nTraceback")
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    text = (tmp_path / "summary.txt").read_text()
    assert text.splitlines()[0].endswith("1 completed, 1 failed, 1 left alone")
    assert "  failed c: ValueError: pruning.criterion must be one of ..." in text
    assert json.loads((tmp_path / "summary.json").read_text())["left_alone"] == [{"point": "a"}]
    assert "1 left alone" in caplog.text
    assert summarize(tmp_path, now)["completed"] == [{"point": "b"}]


def test_export_console_output_lands_in_export_log(make_cfg, tmp_path):
    from prunegen.train import train

    train(make_cfg("pruning=structured", "pruning.start_epoch=0", "pruning.end_epoch=0"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    proc = subprocess.run([sys.executable, "-m", "prunegen.export", f"ckpt_path={ckpt}", "repeats=1", "batch_size=8"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "run" / "export" / "export.log").read_text()
    assert "[prunegen] MACs" in log and "[prunegen] MACs" in proc.stdout + proc.stderr
