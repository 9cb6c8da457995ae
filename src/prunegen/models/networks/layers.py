"""Small pieces shared by the networks: the spectral norm switch (class conditioning: `conditional.py`)."""

from collections.abc import Callable

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def maybe_sn(enabled: bool) -> Callable[[nn.Module], nn.Module]:
    """`spectral_norm` (parametrization API) when enabled, else the identity."""
    return spectral_norm if enabled else (lambda m: m)
