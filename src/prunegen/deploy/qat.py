"""Quantization-aware fine-tuning (GAN Slimming's idea, exported to real int8): from `start_epoch` on, the
generator trains through int8 fake-quantization of what ONNX Runtime's static QDQ quantization
(`deploy.quantize`) later makes integer: each conv / linear weight per output channel (int8, symmetric)
and each layer's input (uint8, ranges from moving-average min/max observers), so the distillation
fine-tune learns weights that survive the int8 export.

Fake-quantization is PyTorch's (`torch.ao.quantization.FakeQuantize`), applied by hooks, not torchao's:
torchao's QAT swaps `nn.Linear` and `nn.Embedding` only, and a generator is convolutions. The hooks act on
the effective weight after the pruning masks (`masks.effective_weight`), so pruning, distillation and QAT
share one run; the generator's modules and state-dict keys are unchanged, the observers' ranges live in
this callback's state (checkpoints carry them). Hooks are removed when training ends: the export then
quantizes the fine-tuned fp32 weights for real (`export.quantize=int8`).
"""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver, PerChannelMinMaxObserver
from torch.nn.utils import prune

from prunegen.masks import PRUNABLE, effective_weight, is_masked


def weight_fake_quant(axis: int) -> FakeQuantize:
    return FakeQuantize(observer=PerChannelMinMaxObserver, quant_min=-127, quant_max=127, dtype=torch.qint8,
                        qscheme=torch.per_channel_symmetric, ch_axis=axis)


def activation_fake_quant() -> FakeQuantize:
    return FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
                        qscheme=torch.per_tensor_affine)


def _channel_axis(layer: nn.Module) -> int:
    """The output-channel axis of the weight (ConvTranspose keeps its outputs on axis 1, as ORT quantizes it)."""
    return 1 if isinstance(layer, nn.ConvTranspose2d) else 0


class FakeQuantized:
    """Fake-quantization of the layers of one network, on or off; `fake` holds each layer's two FakeQuantize."""

    def __init__(self, net: nn.Module) -> None:
        self.layers = {path: m for path, m in net.named_modules() if isinstance(m, PRUNABLE)}
        self.fake = nn.ModuleDict({
            path.replace(".", "/"): nn.ModuleDict({"weight": weight_fake_quant(_channel_axis(m)), "input": activation_fake_quant()})
            for path, m in self.layers.items()
        })
        self.handles: list[Any] = []

    def attach(self) -> None:
        for path, layer in self.layers.items():
            if not is_masked(layer):  # the weight becomes an attribute computed before each forward, as pruning's
                prune.identity(layer, "weight")
            fq = self.fake[path.replace(".", "/")]

            def before(module: nn.Module, args: tuple, fq: nn.ModuleDict = fq) -> tuple:
                fq.train(module.training)  # observers follow the network: ranges frozen while it is scored
                module.weight = fq["weight"](effective_weight(module))
                return (fq["input"](args[0]), *args[1:])

            self.handles.append(layer.register_forward_pre_hook(before))  # after pruning's own hook

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        for layer in self.layers.values():
            layer.weight = effective_weight(layer)  # plain masked weights again (the mask hook refreshes them)


class QuantizationAware(Callback):
    """Fake-quantized int8 fine-tuning of `pl_module.generator` from `start_epoch` to the end of training."""

    def __init__(self, start_epoch: int = 1) -> None:
        if start_epoch < 0:
            raise ValueError(f"callbacks.qat.start_epoch must be >= 0, got {start_epoch}")
        self.start_epoch = start_epoch
        self.quantized: FakeQuantized | None = None
        self._state: dict[str, Any] | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.quantized is not None or trainer.current_epoch < self.start_epoch:
            return
        self.quantized = FakeQuantized(pl_module.generator)
        self.quantized.fake.to(pl_module.device)
        if self._state is not None:  # resumed: the observers' ranges of the interrupted run
            self.quantized.fake.load_state_dict(self._state)
        self.quantized.attach()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.quantized is not None:
            self.quantized.detach()

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return {"qat": {"start_epoch": self.start_epoch, "layers": len(self.quantized.layers) if self.quantized else 0,
                        "fake_quant": "torch.ao.quantization.FakeQuantize (int8 per-channel weights, uint8 inputs)"}}

    def state_dict(self) -> dict[str, Any]:
        return {"fake": self.quantized.fake.state_dict() if self.quantized else self._state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._state = state_dict.get("fake")
