"""A run folder is a run: interrupted runs resume exactly, other configurations are refused, records keep
every attempt, and configuration errors surface before training."""

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from prunegen.masks import get_mask, prunable_layers
from prunegen.run.checks import check_groups
from prunegen.run.lifecycle import RunInterrupted, identity_diff
from prunegen.train import train

BIN = Path(sys.executable).parent
# four epochs, gradient-criterion rounds at the end of epochs 1, 2, 3
GRADIENT_ROUNDS = ["pruning=unstructured", "pruning.criterion=gradient", "pruning.start_epoch=1", "pruning.end_epoch=3",
                   "pruning.final_sparsity=0.6", "trainer.max_epochs=4", "metrics.every_n_epochs=2", "logger=csv"]


def _masks(model):
    return {p: get_mask(m).clone() for p, m in prunable_layers(model, ["generator"]).items()}


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def _record(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_sigterm_then_same_command_ends_as_uninterrupted(make_cfg, tmp_path, interrupt_at):
    full_cfg = make_cfg(*GRADIENT_ROUNDS)
    full_cfg.paths.output_dir = str(tmp_path / "full")
    full, objects = train(full_cfg)
    full_masks = _masks(objects["model"])

    cfg = make_cfg(*GRADIENT_ROUNDS)
    interrupt_at(2)  # SIGTERM after the second epoch (its checkpoint is written)
    with pytest.raises(RunInterrupted):
        train(cfg)
    run = Path(cfg.paths.output_dir)
    stopped = _record(run)
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM" and stopped["last_epoch"] == 1
    assert stopped["attempts"][-1]["status"] == "interrupted"
    assert oct(os.stat(run / "metrics.json").st_mode & 0o044) == oct(0o044)  # the group (and others) can read it

    record, objects = train(make_cfg(*GRADIENT_ROUNDS))  # the same command, in the same folder
    assert record["status"] == "completed" and record["resumed_from"].endswith("last.ckpt")
    assert [a["status"] for a in record["attempts"]] == ["interrupted", "completed"]
    masks = _masks(objects["model"])
    assert masks.keys() == full_masks.keys()
    for path in masks:
        assert torch.equal(masks[path], full_masks[path]), path
    assert record["metrics"]["fid"] == full["metrics"]["fid"]  # bit for bit on the CPU
    assert record["pruning"]["achieved_sparsity"] == full["pruning"]["achieved_sparsity"]
    assert not [p.name for p in (run / "checkpoints").iterdir() if "-v" in p.name]  # no last-v1.ckpt beside last.ckpt
    with open(run / "csv" / "metrics.csv") as f:  # the first attempt's rows are kept
        epochs = {int(float(row["epoch"])) for row in csv.DictReader(f) if row.get("epoch")}
    assert {0, 1, 2, 3} <= epochs


def test_other_configuration_is_refused_and_completed_run_left_alone(make_cfg, tmp_path):
    cfg = make_cfg("pruning=none")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    before = _snapshot(run)
    with pytest.raises(ValueError, match=r"(?s)another configuration.*seed: 0 -> 1"):
        train(make_cfg("pruning=none", "seed=1"))
    assert _snapshot(run) == before  # nothing in the folder changed
    record, objects = train(make_cfg("pruning=none", "trainer.enable_progress_bar=true"))  # a key that changes nothing
    assert record["status"] == "completed" and objects == {}  # already done: not trained again
    assert _snapshot(run) == before


def test_identity_ignores_only_keys_without_effect():
    stored = {"seed": 0, "trainer": {"max_epochs": 4, "enable_progress_bar": False}, "paths": {"output_dir": "a"}}
    given = {"seed": 0, "trainer": {"max_epochs": 5, "enable_progress_bar": True}, "paths": {"output_dir": "b"}}
    assert identity_diff(stored, given) == ["trainer.max_epochs: 4 -> 5"]


def test_schedule_that_does_not_fit_fails_before_training(make_cfg, tmp_path):
    cfg = make_cfg("pruning=structured", "pruning.start_epoch=10", "pruning.end_epoch=10", "trainer.max_epochs=1")
    with pytest.raises(ValueError, match=r"pruning.end_epoch=10.*trainer.max_epochs=1"):
        train(cfg)
    assert _record(tmp_path / "run")["status"] == "failed"
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_group_without_target(make_cfg):
    cfg = make_cfg("pruning=none", "+pruning.final_sparsity=0.5")
    with pytest.raises(ValueError, match=r"pruning: the config sets \['final_sparsity'\] but has no _target_.*pruning=none"):
        check_groups(cfg, {"pruning": "none"}, ["+pruning.final_sparsity=0.5"])
    # an experiment's keys in a group the user switched off: the group stays off
    cfg = make_cfg("experiment=dense_digits", "metrics=none", tiny=False)
    assert cfg.metrics is not None
    check_groups(cfg, {"metrics": "none"}, ["experiment=dense_digits", "metrics=none"])
    assert cfg.metrics is None


def test_failed_export_is_not_completed(make_cfg, tmp_path, monkeypatch):
    import prunegen.deploy.export

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(prunegen.deploy.export, "export_generator", broken)
    cfg = make_cfg("experiment=compress_digits", "pruning.start_epoch=0", "pruning.end_epoch=0", "trainer.max_epochs=1")
    with pytest.raises(RuntimeError, match="disk full"):
        train(cfg)
    record = _record(tmp_path / "run")
    assert record["status"] == "failed" and "disk full" in record["error"]
    assert "prunegen-eval ckpt_path=" in record["error"]  # the checkpoint is kept and the way to score it is named


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    return subprocess.Popen([str(BIN / "prunegen-train"), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, **kwargs)


TINY_CLI = ["trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "model.generator.ngf=8",
            "model.discriminator.ndf=8", "model.generator.latent_dim=16", "data.image_size=16", "data.batch_size=16"]


@pytest.mark.slow
def test_cli_sigterm_exits_nonzero_and_logs_to_the_run_folder(tmp_path):
    run = tmp_path / "run"
    proc = _cli(*TINY_CLI, "metrics=none", "logger=none", "trainer.max_epochs=10000", f"hydra.run.dir={run}")
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last.ckpt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    record = _record(run)
    assert record["status"] == "interrupted" and record["signal"] == "SIGTERM" and record["last_epoch"] >= 0
    assert "Trainer" in (run / "train.log").read_text() or "GPU available" in (run / "train.log").read_text()


def test_cli_config_error_is_reported_before_lightning_is_imported(tmp_path):
    code = ("import sys\nfrom prunegen.train import main\n"
            f"sys.argv = ['prunegen-train', '+pruning.final_sparsity=0.5', 'hydra.run.dir={tmp_path / 'run'}']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('LIGHTNING', 'lightning' in sys.modules, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert "EXIT 1" in text and "pruning: the config sets ['final_sparsity']" in text
    assert "LIGHTNING False False" in text


def _job_pids(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` and submitit's job runner."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if marker in cmd and "submitit.core._submit" in cmd:
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_submitit_requeue_resumes_to_the_uninterrupted_result(make_cfg, tmp_path):
    """hydra/launcher=submitit_local: USR2 (what SLURM sends before a time limit or a preemption) makes submitit
    requeue the job; the restarted job resumes in its folder and ends as an uninterrupted run."""
    from conftest import TINY

    extra = ["trainer.max_epochs=30", "metrics.every_n_epochs=1000", "pruning=structured", "pruning.start_epoch=3",
             "pruning.end_epoch=3", "pruning.final_sparsity=0.5"]
    reference, _ = train(make_cfg(*extra))
    sweep = tmp_path / "sweep"
    proc = _cli("-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", *TINY, *extra,
                f"paths.cache_dir={tmp_path.parent / 'prunegen-cache'}")
    deadline = time.time() + 180
    while not list(sweep.glob("*/checkpoints/last.ckpt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    pids = _job_pids(str(sweep))
    assert pids, "the submitit job was not found running"
    for pid in pids:
        os.kill(pid, signal.SIGUSR2)
    out, _ = proc.communicate(timeout=300)
    (point,) = [p.parent for p in sweep.glob("*/metrics.json")]  # the point's folder: its identity
    record = _record(point)
    assert record["status"] == "completed", out
    assert [(a["status"], a.get("signal")) for a in record["attempts"]] == [("interrupted", "SIGUSR2"), ("completed", None)]
    assert record["metrics"]["fid"] == reference["metrics"]["fid"]
    assert record["pruning"]["achieved_sparsity"] == reference["pruning"]["achieved_sparsity"]


@pytest.mark.slow
def test_sweep_with_a_failing_point_keeps_it_in_the_table(tmp_path):
    from conftest import TINY

    sweep = tmp_path / "sweep"
    proc = _cli("-m", f"hydra.sweep.dir={sweep}", *TINY, "pruning=unstructured", "pruning.start_epoch=0",
                "pruning.end_epoch=0", "pruning.final_sparsity=0.3", "pruning.criterion=magnitude,random,magnitde",
                f"paths.cache_dir={tmp_path.parent / 'prunegen-cache'}")  # a value only the callback can refuse: fails at run time
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, out  # the sweep reports its failure
    statuses = sorted(_record(p.parent)["status"] for p in sweep.glob("*/metrics.json"))
    assert statuses == ["completed", "completed", "failed"]
    subprocess.run([str(BIN / "prunegen-table"), str(sweep)], check=True, capture_output=True, timeout=120)
    with open(sweep / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and sorted(r["status"].split(":")[0] for r in rows) == ["completed", "completed", "failed"]
    failed = next(r for r in rows if r["status"].startswith("failed: "))  # with the first line of its error
    assert failed["run"] == "pruning.criterion=magnitde"  # labelled by the override that differs


def test_structured_checkpoint_without_structured_pruning_fails_before_training(make_cfg, tmp_path):
    cfg = make_cfg("pruning=structured", "pruning.start_epoch=0", "pruning.end_epoch=0")
    cfg.paths.output_dir = str(tmp_path / "pruned")
    train(cfg)
    cfg = make_cfg("pruning=none", f"init_ckpt={tmp_path / 'pruned' / 'checkpoints' / 'last.ckpt'}")
    with pytest.raises(ValueError, match=r"pruned structurally.*pruning.granularity=None.*pruning=structured"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


NOISE = ("val_dataloader", "litlogger", "in eval mode", "find_unused_parameters", "LeafSpec", "DeprecationWarning",
         "FutureWarning")


@pytest.mark.slow
def test_cli_compress_run_prints_no_library_noise(tmp_path):
    """A compress run (frozen teacher, EMA, pruning round, distillation) shows no warning a user cannot act on."""
    from conftest import TINY

    proc = _cli("experiment=compress_digits", *TINY, "pruning.start_epoch=0", "pruning.end_epoch=0", "trainer.max_epochs=2",
                "export=none", f"hydra.run.dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path.parent / 'prunegen-cache'}")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert [line for line in out.splitlines() if any(n in line for n in NOISE)] == []
    assert out.count("Seed set to 0") == 1  # each message once (Lightning's own handlers would print it again)
    assert "pruning round" in (tmp_path / "run" / "train.log").read_text()  # the round's table is in the run folder


@pytest.mark.slow
def test_identity_named_run_resumes_with_the_same_command_and_a_sweep_extends(tmp_path):
    """No hydra.run.dir: the run's identity decides its folder; SIGTERM prints the command that resumes it."""
    args = [*TINY_CLI, "metrics=none", "logger=none", "trainer.max_epochs=3", "callbacks.sample_grid=null",
            "pruning=unstructured", "pruning.start_epoch=0", "pruning.end_epoch=0", "pruning.final_sparsity=0.5"]
    env = {"PRUNEGEN_ROOT": str(tmp_path), "PYTHONPATH": str(Path(__file__).parent)}
    slow = ["+callbacks.slow._target_=slow_epochs.SlowEpochs"]  # half a second per epoch: the signal lands mid-run
    proc = _cli(*args, *slow, env=env)
    runs = tmp_path / "outputs" / "train" / "runs"
    deadline = time.time() + 120
    while not list(runs.glob("*/*/checkpoints/last.ckpt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    folder = next(runs.glob("*/*/metrics.json")).parent
    assert _record(folder)["status"] == "interrupted"
    assert "Resume it with the same command: prunegen-train " in out and "pruning.final_sparsity=0.5" in out
    assert (runs / "latest").resolve() == folder.resolve()
    again = subprocess.run([str(BIN / "prunegen-train"), *args, *slow], capture_output=True, text=True, timeout=300,
                           env={**os.environ, **env})
    record = _record(folder)  # the same folder, found by identity: resumed, completed
    assert again.returncode == 0 and record["status"] == "completed", again.stdout + again.stderr
    assert [a["status"] for a in record["attempts"]] == ["interrupted", "completed"]

    sweep = ["-m", *args, "seed=0,1"]
    subprocess.run([str(BIN / "prunegen-train"), *sweep], capture_output=True, text=True, timeout=300, check=True,
                   env={**os.environ, **env})
    points = tmp_path / "outputs" / "train" / "sweeps" / "dcgan"
    before = {p.parent.name: p.read_bytes() for p in points.glob("*/metrics.json")}
    assert len(before) == 2
    subprocess.run([str(BIN / "prunegen-train"), "-m", *args, "seed=0,1,2"], capture_output=True, text=True, timeout=300,
                   check=True, env={**os.environ, **env})
    after = {p.parent.name: p.read_bytes() for p in points.glob("*/metrics.json")}
    assert len(after) == 3 and all(after[k] == v for k, v in before.items())  # only the new seed trained
    assert "2 left alone" in (points / "summary.txt").read_text()
