"""prunegen-runs: list, diff and find the newest run, from the files runs write (no torch)."""

import json
import os

from prunegen.reporting.listing import diff, latest, main


def _run(folder, seed, fid, status="completed", age=0):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(f"seed: {seed}\nmodel:\n  lr: 0.001\npaths:\n  output_dir: {folder}\n")
    record = {"status": status, "run": {"overrides": ["experiment=compress_digits", f"seed={seed}"]},
              "metrics": {"fid": fid}, "attempts": [{"status": "failed"}, {"status": status}]}
    if status == "failed":
        record["error"] = "ValueError: boom\nmore"
    (folder / "metrics.json").write_text(json.dumps(record))
    for f in (folder / "metrics.json", folder / ".hydra" / "config.yaml"):
        os.utime(f, (1e9 + age, 1e9 + age))


def test_list_diff_and_latest(tmp_path, capsys):
    _run(tmp_path / "sweep" / "0", 0, 1.25, age=10)
    _run(tmp_path / "sweep" / "1", 1, 1.5, age=20)
    _run(tmp_path / "other", 2, None, status="failed", age=5)
    (tmp_path / "sweep" / "1" / "previous" / "x" / ".hydra").mkdir(parents=True)  # moved aside: not a run
    (tmp_path / "sweep" / "1" / "previous" / "x" / "metrics.json").write_text("{}")
    main([str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [str(tmp_path / p) for p in ("other", "sweep/0", "sweep/1")]
    assert "failed: ValueError: boom (2 attempts)" in lines[0] and "FID -" in lines[0]
    assert "completed (2 attempts)  FID 1.25" in lines[1] and "experiment=compress_digits seed=0" in lines[1]
    assert latest(tmp_path) == tmp_path / "sweep" / "1"
    changes = diff(tmp_path / "sweep" / "0", tmp_path / "sweep" / "1")
    assert changes == ["config seed: 0 -> 1", "metric fid: 1.25 -> 1.5 (1.2x)"]  # paths.* left out
    main(["latest", str(tmp_path)])
    assert capsys.readouterr().out.strip() == str(tmp_path / "sweep" / "1")
