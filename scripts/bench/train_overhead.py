"""What does prunegen cost per training epoch beyond the math? `prunegen.train.train(cfg)` against a plain
PyTorch loop over the same instantiated networks, optimizers, EMA and data order, one thread, runs
interleaved (prunegen, plain, prunegen, ...), medians of the per-epoch times (epoch 0 is warm-up).
Times are the process's CPU time (one thread: what the run itself computed, insensitive to the other
jobs of a shared machine, which moved wall-clock ratios by 30% here); wall times are printed beside.

Scenarios: `dense` (experiment=dense_digits), `taylor` (the same with structured Taylor pruning rounds at
the end of epochs 1..4: gradient hooks, masks; against the plain *unpruned* loop) and `distill`
(experiment=compress_digits: one-shot 50% at epoch 0, then output distillation; against a plain L1
distillation loop). `--profile` prints where a prunegen run spends its time (cProfile, own time).

    .venv/bin/python scripts/bench/train_overhead.py [--scenarios dense taylor distill] [--repeats 5] [--epochs 6]
"""

import argparse
import copy
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, open_dict

from prunegen import CONFIG_DIR
from prunegen.models.ema import update_ema
from prunegen.train import train

SCENARIOS = {
    "dense": ["experiment=dense_digits"],
    "taylor": ["experiment=dense_digits", "pruning=structured", "pruning.criterion=taylor", "pruning.start_epoch=1",
               "pruning.end_epoch=4", "pruning.final_sparsity=0.5"],
    "distill": ["experiment=compress_digits", "pruning.start_epoch=0", "pruning.end_epoch=0"],
}


class EpochClock(Callback):
    """Wall time from each epoch start to the next one (or to the end of training): the epoch's steps, its
    end-of-epoch hooks and its checkpoint."""

    instances: list["EpochClock"] = []

    def __init__(self) -> None:
        self.stamps: list[float] = []
        EpochClock.instances.append(self)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stamps.append(stamp())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stamps.append(stamp())

    def epochs(self) -> list[tuple[float, float]]:
        return intervals(self.stamps)


def stamp() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def intervals(stamps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(CPU seconds, wall seconds) between consecutive stamps."""
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])]


def make_cfg(overrides: list[str], epochs: int, out: Path, extra: list[str] = ()) -> DictConfig:
    base = [f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false", "export=none",
            "callbacks.sample_grid=null", "num_threads=1"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, *base, *extra])
    with open_dict(cfg):
        cfg.metrics = cfg.export = None  # scoring and exporting are not training
        cfg.paths.output_dir = str(out)
        cfg.paths.cache_dir = str(out.parent / "cache")
        cfg.callbacks.epoch_clock = {"_target_": f"{__name__}.EpochClock"}
    return cfg


def prunegen_epochs(cfg: DictConfig) -> list[tuple[float, float]]:
    EpochClock.instances.clear()
    train(cfg)
    return EpochClock.instances[-1].epochs()


def _ema_decay(model, step: int) -> float:
    return min(model.hparams.ema_decay, (1 + step) / (10 + step))


def plain_epochs(cfg: DictConfig, distill: bool) -> list[tuple[float, float]]:
    """The same math without Lightning: D step + G step + EMA, or (from epoch 1) L1 distillation of G from a
    frozen copy of its EMA (the teacher, snapshotted at the end of epoch 0 like the callback's)."""
    torch.set_num_threads(cfg.num_threads)
    L.seed_everything(cfg.seed, workers=True)
    dm, model = instantiate(cfg.data), instantiate(cfg.model)
    dm.setup("fit")
    G, D, ema = model.generator.train(), model.discriminator.train(), getattr(model, "ema", None)
    opts = model.configure_optimizers()  # [G, D] optimizers (and G's lr plan, when the model has one)
    opt_g, opt_d = opts[0] if isinstance(opts, tuple) else opts
    loader, limit, teacher = dm.train_dataloader(), cfg.trainer.limit_train_batches, None
    batches = int(limit) if limit > 1 else int(len(loader) * limit)
    steps, stamps = 0, [stamp()]  # optimizer steps, as Lightning's global_step counts them (the EMA's warm-up)
    for _ in range(cfg.trainer.max_epochs):
        for _, (x, _) in zip(range(batches), loader):
            z = torch.randn(x.shape[0], G.latent_dim)
            if teacher is None:
                d_loss = model.d_loss_fn(D(x), D(G(z).detach()))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                g_loss = model.g_loss_fn(D(G(z)))
            else:
                with torch.no_grad():
                    target = teacher(z)
                g_loss = F.l1_loss(G(z), target)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            steps += 1 if teacher is not None else 2
            if ema is not None:
                update_ema(ema, G, _ema_decay(model, steps))
        if distill and teacher is None:
            teacher = copy.deepcopy(ema if ema is not None else G).eval().requires_grad_(False)
            opt_g.state.clear()
        stamps.append(stamp())
    return intervals(stamps)


def compare(name: str, repeats: int, epochs: int, root: Path) -> dict[str, float]:
    ours, plain = [], []
    for r in range(repeats):
        ours += prunegen_epochs(make_cfg(SCENARIOS[name], epochs, root / f"{name}{r}"))[1:]
        plain += plain_epochs(make_cfg(SCENARIOS[name], epochs, root / f"plain{r}"), distill=name == "distill")[1:]
    (o, ow), (p, pw) = ([statistics.median(t[i] for t in ts) for i in (0, 1)] for ts in (ours, plain))
    print(f"{name:8s} prunegen {o * 1000:7.1f} ms CPU/epoch   plain {p * 1000:7.1f}   ratio {o / p:.3f}   "
          f"(wall {ow * 1000:.0f} vs {pw * 1000:.0f} ms: {ow / pw:.3f}; epochs 1..{epochs - 1} x {repeats} runs)", flush=True)
    return {"prunegen_cpu_s": o, "plain_cpu_s": p, "ratio": o / p, "wall_ratio": ow / pw}


def profile(name: str, epochs: int, root: Path, top: int) -> None:
    cfg = make_cfg(SCENARIOS[name], epochs, root / f"profile-{name}")
    prof = cProfile.Profile()
    prof.runcall(train, cfg)
    print(f"--- {name}: top {top} functions by own time over {epochs} epochs (setup included)")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs per side")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (the first is not counted)")
    parser.add_argument("--profile", action="store_true", help="also profile one prunegen run per scenario")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sides (e.g. data.batch_size=16)")
    args = parser.parse_args()
    SCENARIOS.update({k: [*v, *args.overrides] for k, v in SCENARIOS.items()})
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios:
            compare(name, args.repeats, args.epochs, Path(tmp))
            if args.profile:
                profile(name, args.epochs, Path(tmp), args.top)


if __name__ == "__main__":
    main()
