"""The benchmark scripts run (on the CPU, tiny sizes) and measure what they say they measure; the speed
settings they rely on keep the math."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate

from prunegen import CONFIG_DIR
from prunegen.deploy.inference import choose_round_to, prepare_inference, round_widths
from prunegen.models.family import should_log
from prunegen.models.networks import DCGANGenerator
from prunegen.run.fast import FastTraining

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "scripts" / "bench"
sys.path.insert(0, str(BENCH))

import compact_runtimes  # noqa: E402
import train_overhead  # noqa: E402

TINY = ["model.generator.ngf=8", "model.discriminator.ndf=8", "data.image_size=16", "trainer.limit_train_batches=3"]


def test_plain_loop_computes_what_prunegen_trains(tmp_path):
    """The overhead benchmark's baseline does the same math: same networks, data order, optimizers, EMA."""
    _, objects = train_overhead.train(train_overhead.make_cfg(["experiment=dense_digits", *TINY], 2, tmp_path / "a"))
    ours = train_overhead.EpochClock.instances[-1].epochs()
    built = []
    real = train_overhead.instantiate
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_overhead, "instantiate", lambda c, *a, **k: built.append(real(c, *a, **k)) or built[-1])
        plain = train_overhead.plain_epochs(train_overhead.make_cfg(["experiment=dense_digits", *TINY], 2, tmp_path / "b"), False)
    assert len(ours) == len(plain) == 2 and all(cpu > 0 and wall > 0 for cpu, wall in ours + plain)
    for name in ("generator", "discriminator", "ema"):
        a, b = objects["model"].get_submodule(name).state_dict(), built[1].get_submodule(name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_compact_runtimes_prints_every_runtime(capsys):
    compact_runtimes.main(["--batch", "4", "--repeats", "1", "--ngf", "8", "--image-size", "16",
                           "--runtimes", "eager", "compile", "onnx", "--compile-backend", "eager"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    table = [r for r in rows if r and r[0] in ("eager", "compile", "onnx") and "speedup" not in r]
    assert len(table) == 3 * 3 * 2  # runtimes x generators x preparations
    best = [r for r in rows if r and r[0] in ("eager", "compile", "onnx", "best") and "speedup" in r]
    assert len(best) == 4 * 3  # (each runtime + the best of all) x generators
    for r in table:
        if r[1] == "dense":
            assert r[-5:-3] == ["1.00", "1.00"]  # speedup and MACs ratio of the dense model against itself
    ratios = {float(r[-4]) for r in table if r[1] == "75%"}
    assert len(ratios) == 1 and ratios.pop() > 5


def test_measured_inference_copy_keeps_the_output():
    torch.manual_seed(0)
    g = DCGANGenerator(ngf=8, image_size=16, widths=[12, 6])
    g.train()(torch.randn(32, g.latent_dim))  # BatchNorm statistics to fold
    g.eval()
    z = torch.randn(8, g.latent_dim)
    fast = prepare_inference(g, measure_batch=8)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    with torch.no_grad():
        torch.testing.assert_close(fast(z), g(z), atol=1e-5, rtol=1e-5)


def test_round_widths_and_latency_aware_choice():
    assert round_widths([18, 36, 72], 16) == [16, 32, 80]
    assert round_widths([3, 20], 8, "up") == [8, 24] and round_widths([3, 20], 8, "down") == [8, 16]
    best, cost = choose_round_to(lambda w: DCGANGenerator(ngf=8, image_size=16, widths=w).eval(), [10, 5], (1, 4), batch=4, repeats=1)
    assert best in (1, 4) and set(cost) == {1, 4} and all(c > 0 for c in cost.values())


def test_fast_training_channels_last_and_compile_keep_the_state(make_cfg):
    model = instantiate(make_cfg().model)
    keys = set(model.state_dict())
    FastTraining(channels_last=True, compile=True, compile_kwargs={"backend": "eager"}).setup(None, model, "fit")
    conv = model.generator.net[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert set(model.state_dict()) == keys  # compiled in place: same paths, same checkpoints
    assert model.generator(torch.randn(2, model.latent_dim)).shape == (2, 1, 16, 16)


def test_should_log_only_where_a_logger_or_the_epoch_end_reads():
    def module(log_step: bool, last: bool):
        return SimpleNamespace(_trainer=SimpleNamespace(is_last_batch=last, _logger_connector=SimpleNamespace(should_update_logs=log_step)))

    assert should_log(module(True, False)) and should_log(module(False, True))
    assert not should_log(module(False, False))
    assert should_log(SimpleNamespace(_trainer=None))


def test_gpu_config_and_joblib_launcher_compose():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["trainer=gpu", "hydra/launcher=parallel"], return_hydra_config=True)
    assert cfg.trainer.precision == "bf16-mixed" and cfg.callbacks.fast.channels_last and not cfg.callbacks.fast.compile
    assert get_class(cfg.callbacks.fast._target_) is FastTraining
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.num_threads == 1
    get_class(cfg.hydra.launcher._target_)


@pytest.mark.slow
def test_gpu_script_runs_on_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT_DIR": str(tmp_path)}
    done = subprocess.run(["bash", str(BENCH / "gpu.sh"), "device=cpu", "tiny=1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = (tmp_path / "gpu_bench.txt").read_text()
    for line in ("train  dcgan_digits", "train  sngan_cifar10", "infer  eager    75% removed", "infer  compile  dense",
                 "fid    prunegen"):
        assert line in out, out
