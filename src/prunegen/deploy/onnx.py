"""ONNX export of a generator: dynamic batch axis, a `labels` input when conditional, run by ONNX Runtime.
An iterative generator (a diffusion UNet) is exported as one step of its network: inputs `x_t`, `t`, output
`eps`; the sampler loop stays in the caller (diffusers' schedulers).

    from prunegen.deploy.onnx import load_onnx
    images = load_onnx("generator_compact.onnx")(torch.randn(16, 64))  # (16, C, S, S) in [-1, 1]
"""

import logging
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prunegen.generator import example_inputs, is_iterative

OPSET = 18  # the lowest opset torch's (dynamo) ONNX exporter implements without a version conversion


def _inputs(generator: nn.Module, n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(z,) or (z, labels) on fixed latents; labels cycle over the classes of a conditional generator;
    (x_t, t) of one step for an iterative generator."""
    rng = torch.Generator().manual_seed(seed)
    if is_iterative(generator):
        return tuple(t.cpu() for t in generator.step_inputs(n, rng))
    z, labels = example_inputs(generator, n, rng=rng, device="cpu")
    return (z,) if labels is None else (z, labels)


class _Step(nn.Module):
    """One step of an iterative generator's network, as the module ONNX exports."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.generator.step(x_t, t)


def _run(generator: nn.Module, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return generator.step(*args) if is_iterative(generator) else generator(*args)


def export_onnx(generator: nn.Module, path: str | Path, opset: int = OPSET) -> Path:
    """Write `generator` (eval mode) as ONNX: inputs `z` (B, latent_dim) [and `labels` (B,) int64], output
    `images` (B, C, S, S); for an iterative generator one step, `x_t` (B, C, S, S) and `t` (B,) int64 to
    `eps`. B is dynamic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator.eval()
    args = _inputs(generator, 2)
    step = is_iterative(generator)
    names = ["x_t", "t"] if step else ["z", "labels"][: len(args)]
    batch = torch.export.Dim("batch", min=1)
    dynamic = {name: {0: batch} for name in names}
    # the exporter and its graph optimizer (onnxscript, onnx_ir) log every pass at INFO
    chatty = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [log.level for log in chatty]
    for log in chatty:
        log.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # one Dim shared by z and labels: torch notes that the second name is not used
            warnings.filterwarnings("ignore", message=".*axis name: batch will not be used")
            program = torch.onnx.export(
                _Step(generator) if step else generator, args, input_names=names,
                output_names=["eps" if step else "images"], dynamic_shapes=dynamic,
                opset_version=opset, dynamo=True, verbose=False, optimize=True,
            )
    finally:
        for log, level in zip(chatty, levels):
            log.setLevel(level)
    program.save(str(path))
    return path


class OnnxGenerator:
    """An ONNX Runtime session with the generator protocol's `latent_dim`, `num_classes` (1 when the file
    has a labels input: the class count is not stored) and `__call__(z, labels=None) -> images`; for a
    one-step file, `__call__(x_t, t) -> eps`."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.step = "x_t" in self.inputs
        self.latent_dim = 0 if self.step else int(self.inputs["z"].shape[1])
        self.conditional = "labels" in self.inputs

    def example(self, batch: int) -> tuple[np.ndarray, ...]:
        """Random inputs of `batch` rows: (z, labels or None), or (x_t, t) for a one-step file."""
        if self.step:
            shape = [batch, *map(int, self.inputs["x_t"].shape[1:])]
            return np.random.randn(*shape).astype(np.float32), np.full(batch, 500, dtype=np.int64)
        z = np.random.randn(batch, self.latent_dim).astype(np.float32)
        return z, np.zeros(batch, dtype=np.int64) if self.conditional else None

    def __call__(self, z: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        if self.step:
            feed = {"x_t": np.asarray(z, dtype=np.float32), "t": np.asarray(labels, dtype=np.int64)}
            return torch.from_numpy(self.session.run(["eps"], feed)[0])
        feed = {"z": np.asarray(z, dtype=np.float32)}
        if self.conditional:
            if labels is None:
                raise ValueError("this ONNX generator is conditional: pass labels (B,) int64")
            feed["labels"] = np.asarray(labels, dtype=np.int64)
        return torch.from_numpy(self.session.run(["images"], feed)[0])


def load_onnx(path: str | Path, threads: int | None = None) -> OnnxGenerator:
    """The exported generator under ONNX Runtime (CPU); `threads=None` lets ORT use every core."""
    return OnnxGenerator(path, threads)


@torch.no_grad()
def onnx_max_abs_diff(path: str | Path, generator: nn.Module, n: int = 64, seed: int = 0) -> float:
    """Largest output difference of the ONNX file (ORT) and the PyTorch generator on the same fixed latents."""
    args = _inputs(generator, n, seed)
    generator.eval()
    return (load_onnx(path)(*args) - _run(generator, args)).abs().max().item()


def ort_latency_ms(*paths: str | Path, batch: int = 256, repeats: int = 10, threads: int | None = 1,
                   warmup: int = 2) -> list[float]:
    """Median wall time of one batch per ONNX file, in milliseconds, timed in alternation (a, b, a, b, ...)."""
    sessions = [load_onnx(p, threads) for p in paths]
    inputs = [s.example(batch) for s in sessions]
    times: list[list[float]] = [[] for _ in sessions]
    for i in range(warmup + repeats):
        for s, args, t in zip(sessions, inputs, times):
            start = time.perf_counter()
            s(*args)
            if i >= warmup:
                t.append((time.perf_counter() - start) * 1000)
    return [statistics.median(t) for t in times]


def onnx_record(compact: nn.Module, dense: nn.Module, path: Path, tolerance: float, batch: int, repeats: int) -> dict[str, Any]:
    """Export `compact`, verify it against PyTorch (refused above `tolerance`: nothing written), time it
    beside `dense` under ONNX Runtime with 1 thread and with every core, then move it to `path`."""
    all_threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        small = export_onnx(compact, Path(tmp) / "compact.onnx")
        diff = onnx_max_abs_diff(small, compact)
        if diff > tolerance:
            raise RuntimeError(f"ONNX generator differs from the PyTorch one by {diff:.3g} > tolerance {tolerance}; nothing written")
        big = export_onnx(dense, Path(tmp) / "dense.onnx")
        one = ort_latency_ms(big, small, batch=batch, repeats=repeats, threads=1)
        every = ort_latency_ms(big, small, batch=batch, repeats=repeats, threads=all_threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(small, path)
    return {
        "path": str(path), "file_bytes": path.stat().st_size, "opset": OPSET, "max_abs_diff": diff,
        "graph": "one denoising step (x_t, t -> eps)" if is_iterative(compact) else "the generator (z -> images)",
        "threads_all": all_threads,
        "dense": {"latency_ms_1_thread": one[0], "latency_ms_all_threads": every[0]},
        "compact": {"latency_ms_1_thread": one[1], "latency_ms_all_threads": every[1]},
        "speedup_1_thread": one[0] / one[1], "speedup_all_threads": every[0] / every[1],
    }
