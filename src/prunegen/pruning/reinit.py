"""Weight (re-)initialisation for lottery-ticket experiments: the initial weights and the random tickets."""

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from prunegen.choices import check_choice
from prunegen.masks import trainable

INITS = ("default", "xavier_uniform")
CONVS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def raw_weight(module: nn.Module) -> torch.Tensor:
    """The stored tensor behind `module.weight`: under a parametrization (spectral norm) or a pruning mask."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return trainable(module)


@torch.no_grad()
def init_weights(root: nn.Module, init: str) -> None:
    """Re-initialise every layer under `root` from the global RNG; masks and parametrizations stay.

    default: PyTorch's own init of each layer (kaiming-uniform conv/linear weights, BatchNorm to 1 / 0).
    xavier_uniform: GAN-LTH's `weights_init` (its `init_type=xavier_uniform`): Conv2d weights
    xavier-uniform, BatchNorm2d weights N(1, 0.02) and biases 0; every other layer keeps its weights.
    """
    check_choice("pruning.init", init, INITS)
    for module in root.modules():
        if init == "xavier_uniform":
            if type(module) is nn.Conv2d:
                nn.init.xavier_uniform_(raw_weight(module), 1.0)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)
        elif isinstance(module, CONVS):
            weight = raw_weight(module)
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # what reset_parameters does
            if module.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.modules.batchnorm._NormBase, nn.Embedding)):
            module.reset_parameters()
