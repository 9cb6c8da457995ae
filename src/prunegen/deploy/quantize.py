"""Int8 generators: ONNX Runtime's static quantization (QDQ: per-channel int8 weights, uint8 activations
calibrated on the generator's own latents and labels, the final Tanh left in float), verified against the
fp32 file, with a per-layer report of what runs as int8 after ORT's graph optimisation, and the form
(transposed convolutions kept, or rewritten as sub-pixel convolutions) chosen by measured time.

    from prunegen.deploy.onnx import load_onnx
    images = load_onnx("generator_int8.onnx")(torch.randn(16, 64))

Why the form matters (measured here, AVX-512 VNNI): ORT's CPU provider has int8 kernels for Conv
(QLinearConv) and MatMul/Gemm, none for ConvTranspose, which it runs as DQ -> ConvTranspose (fp32) -> Q,
slower than the fp32 graph; the sub-pixel rewrite (`deploy.inference.subpixel`) turns every upsampling
layer into a Conv that gets the int8 kernel.
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prunegen.deploy.onnx import _inputs, export_onnx, load_onnx, ort_latency_ms
from prunegen.generator import example_inputs
from prunegen.run.checks import check_export

INT8_OPS = {"QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "QGemm", "QLinearAdd", "QLinearMul",
            "QLinearLeakyRelu", "QLinearSigmoid", "QLinearConcat", "QLinearAveragePool", "QLinearGlobalAveragePool"}
FLOAT_COMPUTE = {"Conv", "ConvTranspose", "Gemm", "MatMul"}  # the layers whose form decides the speed
WHY_FLOAT = {
    "ConvTranspose": "ORT's CPU provider has no int8 ConvTranspose kernel (DQ -> fp32 -> Q); "
                     "export.int8_form=subpixel rewrites the upsampling ones as Convs",
    "Conv": "left in float by the quantizer (excluded, or its input is not quantized)",
    "Gemm": "left in float by the quantizer (excluded, or its input is not quantized)",
    "MatMul": "left in float by the quantizer (excluded, or its input is not quantized)",
}


class _Latents:
    """ORT's CalibrationDataReader: the generator's own latents (and cycled labels) in batches."""

    def __init__(self, generator: nn.Module, samples: int, batch: int = 64, seed: int = 1) -> None:
        rng = torch.Generator().manual_seed(seed)
        self.feeds = []
        for start in range(0, samples, batch):
            z, labels = example_inputs(generator, min(batch, samples - start), rng=rng, device="cpu")
            feed = {"z": z.numpy()}
            if labels is not None:
                feed["labels"] = labels.numpy()
            self.feeds.append(feed)
        self._it = iter(self.feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.feeds)


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[name]


def quantize_onnx(fp32: Path, out: Path, generator: nn.Module, samples: int = 512, method: str = "minmax",
                  activations: bool = True) -> Path:
    """Static QDQ quantization of the fp32 ONNX file `fp32` of `generator` into `out`: per-channel int8
    weights; with `activations`, uint8 activations calibrated on `samples` of its own latents (otherwise
    weights only: dynamic int8 via ORT's quantize_dynamic); the final Tanh stays in float."""

    root = logging.getLogger()  # the quantizer warns on every 1-d weight it leaves per-tensor (biases, norms)
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return _quantize(fp32, out, generator, samples, method, activations)
    finally:
        root.setLevel(level)


def _quantize(fp32: Path, out: Path, generator: nn.Module, samples: int, method: str, activations: bool) -> Path:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
        tanh = [n.name for n in graph.node if n.op_type == "Tanh"]
        if not activations:
            quantize_dynamic(str(pre), str(out), per_channel=True, weight_type=QuantType.QInt8,
                             nodes_to_exclude=tanh)
            return out
        quantize_static(
            str(pre), str(out), _Latents(generator, samples), quant_format=QuantFormat.QDQ, per_channel=True,
            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, calibrate_method=_method(method),
            nodes_to_exclude=tanh, extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    return out


def op_coverage(path: Path) -> dict[str, Any]:
    """What ONNX Runtime runs after its graph optimisation (read from the optimised model it writes): each
    compute layer (conv, transposed conv, matmul) as int8 or float, with why for the float ones."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        nodes = onnx.load(options.optimized_model_filepath).graph.node
    layers = []
    for n in nodes:
        if n.op_type in INT8_OPS:
            layers.append({"node": n.name, "op": n.op_type, "precision": "int8"})
        elif n.op_type in FLOAT_COMPUTE or (n.domain == "com.microsoft" and n.op_type in ("FusedConv", "FusedGemm", "NhwcConv")):
            base = "Conv" if n.op_type in ("FusedConv", "NhwcConv") else n.op_type.replace("Fused", "")
            layers.append({"node": n.name, "op": n.op_type, "precision": "float", "why": WHY_FLOAT.get(base, "")})
    n_int8 = sum(layer["precision"] == "int8" for layer in layers)
    return {"layers": layers, "int8": n_int8, "float": len(layers) - n_int8}


def weight_dtypes(path: Path) -> dict[str, int]:
    """How many of the file's weight tensors (initializers of >= 2 dims) are stored as int8, uint8 or float."""
    import onnx
    from onnx import TensorProto

    names = {TensorProto.INT8: "int8", TensorProto.UINT8: "uint8", TensorProto.FLOAT: "float"}
    counts: dict[str, int] = {}
    for t in onnx.load(str(path)).graph.initializer:
        if len(t.dims) >= 2:
            key = names.get(t.data_type, str(t.data_type))
            counts[key] = counts.get(key, 0) + 1
    return counts


@torch.no_grad()
def output_diff(a: Path, b: Path, generator: nn.Module, n: int = 64, seed: int = 0) -> tuple[float, float]:
    """(max, mean) |a - b| of two ONNX files of `generator` on the same fixed latents."""
    args = [t.numpy() for t in _inputs(generator, n, seed)]
    d = (load_onnx(a)(*args) - load_onnx(b)(*args)).abs()
    return d.max().item(), d.mean().item()


def _forms(generator: nn.Module, form: str) -> dict[str, nn.Module]:
    """The inference copies to quantize: transposed convolutions kept, and/or all rewritten as sub-pixel."""
    from prunegen.deploy.inference import prepare_inference

    kept = prepare_inference(generator, channels_last=False, subpixel_max_channels=0)
    rewritten = prepare_inference(generator, channels_last=False, subpixel_max_channels=1 << 30)
    has_transposed = any(isinstance(m, nn.ConvTranspose2d) for m in kept.modules())
    forms = {"transposed": kept, "subpixel": rewritten} if has_transposed else {"transposed": kept}
    return forms if form == "auto" else {form: forms.get(form, kept)}


def int8_record(compact: nn.Module, out_dir: Path, settings: Any, fp32_onnx: Path | None = None) -> dict[str, Any]:
    """Quantize the compact generator (each form, see `_forms`), keep the fastest int8 file at one thread as
    `generator_int8.onnx` in `out_dir`, verify it against the fp32 ONNX of the same graph (refused above
    `export.int8_tolerance`, mean |diff|: nothing written), time both at 1 thread and at every core, and
    report its op coverage, weight dtypes and sizes. `fp32_onnx`: the fp32 file of the compact generator
    (the best fp32 runtime is timed against it), exported here when None."""
    check_export(settings)
    cal = settings.get("calibration") or {}
    samples, method = int(cal.get("samples", 512)), cal.get("method", "minmax")
    batch, repeats = int(settings.batch_size), int(settings.repeats)
    tolerance = float(settings.get("int8_tolerance", 0.03))
    all_threads = os.cpu_count() or 1
    compact.eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reference = fp32_onnx if fp32_onnx is not None else export_onnx(compact, tmp / "fp32.onnx")
        forms = {}
        for name, net in _forms(compact, settings.get("int8_form", "auto")).items():
            f32 = export_onnx(net, tmp / f"{name}_fp32.onnx")
            i8 = quantize_onnx(f32, tmp / f"{name}_int8.onnx", net, samples, method, settings.get("int8_activations", True))
            forms[name] = {"fp32": f32, "int8": i8}
        files = [reference] + [f["fp32"] for f in forms.values()] + [f["int8"] for f in forms.values()]
        one = ort_latency_ms(*files, batch=batch, repeats=repeats, threads=1)
        every = ort_latency_ms(*files, batch=batch, repeats=repeats, threads=all_threads)
        k = len(forms)
        timed = {name: {"fp32_ms_1_thread": one[1 + i], "int8_ms_1_thread": one[1 + k + i],
                        "fp32_ms_all_threads": every[1 + i], "int8_ms_all_threads": every[1 + k + i]}
                 for i, name in enumerate(forms)}
        best = min(timed, key=lambda name: timed[name]["int8_ms_1_thread"])
        best_fp32_1 = min([one[0]] + [t["fp32_ms_1_thread"] for t in timed.values()])
        best_fp32_all = min([every[0]] + [t["fp32_ms_all_threads"] for t in timed.values()])
        chosen = forms[best]["int8"]
        max_diff, mean_diff = output_diff(chosen, reference, compact)
        if mean_diff > tolerance:
            raise RuntimeError(
                f"int8 generator differs from the fp32 one by mean |diff| {mean_diff:.3g} (max {max_diff:.3g}) > "
                f"export.int8_tolerance {tolerance}; nothing written (try export.calibration.samples, "
                f"export.calibration.method, or QAT fine-tuning: callbacks=qat)")
        path = Path(out_dir) / "generator_int8.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        fp32_bytes = forms[best]["fp32"].stat().st_size
        shutil.copy(chosen, path)
        coverage = op_coverage(path)
        dtypes = weight_dtypes(path)
    int8_1, int8_all = timed[best]["int8_ms_1_thread"], timed[best]["int8_ms_all_threads"]
    return {
        "path": str(path), "file_bytes": path.stat().st_size, "fp32_file_bytes": fp32_bytes,
        "size_ratio": fp32_bytes / path.stat().st_size, "form": best, "forms": timed,
        "max_abs_diff": max_diff, "mean_abs_diff": mean_diff, "tolerance": tolerance,
        "calibration": {"method": method, "samples": samples}, "activations": bool(settings.get("int8_activations", True)),
        "coverage": coverage, "weight_dtypes": dtypes,
        "latency_ms_1_thread": int8_1, "latency_ms_all_threads": int8_all,
        "fp32_best_ms_1_thread": best_fp32_1, "fp32_best_ms_all_threads": best_fp32_all,
        "speedup_vs_best_fp32_1_thread": best_fp32_1 / int8_1, "speedup_vs_best_fp32_all_threads": best_fp32_all / int8_all,
        "threads_all": all_threads, "isa": cpu_isa(),
    }


def cpu_isa() -> dict[str, Any]:
    """The host's int8-relevant instruction sets (ONNX Runtime warns int8 can be slower without VNNI)."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"avx2": "avx2" in flags, "avx512f": "avx512f" in flags,
            "vnni": bool({"avx512_vnni", "avx_vnni"} & flags), "amx_int8": "amx_int8" in flags}


class OrtGenerator(nn.Module):
    """An ONNX file behind the generator protocol (`latent_dim`, `num_classes`, `forward(z, labels)`), so the
    run's own scorer samples it on the same latents as the PyTorch generator it came from."""

    def __init__(self, path: str | Path, like: nn.Module, threads: int | None = None) -> None:
        super().__init__()
        self.session = load_onnx(path, threads)
        self.latent_dim, self.num_classes = like.latent_dim, like.num_classes
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # the device the samplers look up

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.session(z.cpu(), None if labels is None else labels.cpu()).to(z.device)

    def spec(self) -> dict[str, Any]:
        raise TypeError("an ONNX Runtime generator is not rebuilt from a spec: load its .onnx file")
