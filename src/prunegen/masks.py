"""Masks live in the module's state through torch.nn.utils.prune (`<name>_orig` + `<name>_mask`).

A masked GroupNorm normalises its alive channels only, in its `num_groups` groups (masked channels give 0):
what the compact layer computes once the masked channels are removed (Torch-Pruning keeps the group count).
"""

import copy
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)  # per-channel scale and shift (weight, bias: dim 0)


def _group_norm_alive(module: nn.GroupNorm, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
    """Forward hook of a masked GroupNorm: its output recomputed over the alive channels only."""
    mask = getattr(module, "weight_mask", None)
    mask = module.__dict__.get("alive_mask") if mask is None else mask
    if mask is None or bool(mask.all()):
        return None
    alive = mask.nonzero().flatten()
    if len(alive) % module.num_groups:
        raise ValueError(f"a masked GroupNorm keeps {len(alive)} channels, not a multiple of its {module.num_groups} groups")
    if not len(alive):
        return torch.zeros_like(output)
    y = F.group_norm(inputs[0].index_select(1, alive), module.num_groups, module.weight.index_select(0, alive),
                     module.bias.index_select(0, alive), module.eps)
    return torch.zeros_like(output).index_copy(1, alive, y)


def share_alive_channels(module: nn.Module, mask: torch.Tensor) -> None:
    """A plain GroupNorm that mirrors a masked one (its EMA copy) normalises the same alive channels; `mask` is
    kept as a plain attribute (not state), set again whenever the masks change."""
    if isinstance(module, nn.GroupNorm):
        module.__dict__["alive_mask"] = mask
        _watch(module)


def _watch(module: nn.Module) -> None:
    """Install the alive-channel GroupNorm once on a GroupNorm that gets a mask (idempotent)."""
    if isinstance(module, nn.GroupNorm) and _group_norm_alive not in module._forward_hooks.values():
        module.register_forward_hook(_group_norm_alive)


def is_masked(module: nn.Module, name: str = "weight") -> bool:
    return hasattr(module, f"{name}_mask")


def effective_weight(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The weight the forward pass uses now (the `module.weight` attribute is only refreshed in forward)."""
    if is_masked(module, name):
        return getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")
    return getattr(module, name)


def trainable(module: nn.Module, name: str = "weight") -> nn.Parameter:
    """The parameter the optimizer updates (and gradient hooks attach to), masked or not."""
    return getattr(module, f"{name}_orig") if is_masked(module, name) else getattr(module, name)


def is_mask_key(key: str) -> bool:
    """A state-dict key (or buffer name) that holds a mask."""
    return key.endswith("_mask")


def param_key(key: str) -> str:
    """A state-dict key (or parameter name) as the unmasked module names it: `net.0.weight_orig` -> `net.0.weight`."""
    return key.removesuffix("_orig")


def module_masks(module: nn.Module) -> dict[str, torch.Tensor]:
    """{parameter name: mask} of the masks held directly by `module`."""
    return {k.removesuffix("_mask"): b for k, b in module._buffers.items() if is_mask_key(k) and b is not None}


def get_mask(module: nn.Module, name: str = "weight") -> torch.Tensor:
    if is_masked(module, name):
        return getattr(module, f"{name}_mask")
    return torch.ones_like(getattr(module, name))


def set_mask(module: nn.Module, name: str, mask: torch.Tensor) -> None:
    """Install or update a binary mask; the parameter object stays the same, so optimizers stay valid."""
    if is_masked(module, name):
        buf = getattr(module, f"{name}_mask")
        buf.copy_(mask.to(buf))
        setattr(module, name, effective_weight(module, name))
    else:
        prune.custom_from_mask(module, name, mask.to(getattr(module, name)))
    _watch(module)


def restore_masks(root: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Re-create the prune reparametrization for every `*_mask` key so a strict load of a pruned state works."""
    for key in state_dict:
        if not is_mask_key(key):
            continue
        path, pname = key.rsplit(".", 1)
        module, name = root.get_submodule(path), pname[: -len("_mask")]
        if not is_masked(module, name):
            prune.identity(module, name)
        _watch(module)


def remove_masks(root: nn.Module) -> None:
    """Make masks permanent: `weight = weight_orig * weight_mask` as a plain parameter again."""
    for module in root.modules():
        for name in list(module_masks(module)):
            prune.remove(module, name)


def unmasked_copy(root: nn.Module) -> nn.Module:
    """A deep copy with the masks made permanent (plain parameters); `root` itself is unchanged."""
    with torch.no_grad():  # the cached `weight` attributes carry autograd history that deepcopy refuses
        for module in root.modules():
            for key in [k for k in module._buffers if k.endswith("_mask")]:
                name = key[: -len("_mask")]
                setattr(module, name, effective_weight(module, name))
    plain = copy.deepcopy(root)
    alive = {m: m.weight_mask.clone() for m in plain.modules() if isinstance(m, nn.GroupNorm) and is_masked(m)}
    remove_masks(plain)
    for module, mask in alive.items():  # still normalised over the channels the masks left
        share_alive_channels(module, mask)
    return plain


def forget_alive_channels(root: nn.Module) -> None:
    """Drop what `share_alive_channels` recorded (once the dead channels are physically removed)."""
    for module in root.modules():
        module.__dict__.pop("alive_mask", None)


def ordered_parameters(root: nn.Module) -> Iterator[nn.Parameter]:
    """Parameters in an order that pruning does not change (prune re-registers `weight` as `weight_orig`
    at the end of its module's dict), so optimizer state saved before pruning restores by position."""
    seen: set[int] = set()
    for module in root.modules():
        for name in sorted(module._parameters, key=lambda n: n.removesuffix("_orig")):
            p = module._parameters[name]
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                yield p


def prunable_layers(root: nn.Module, targets: list[str], ignore: list[str] = ()) -> dict[str, nn.Module]:
    """`{path: layer}` of the conv/linear layers under the target paths (relative to `root`)."""
    layers = {}
    for target in targets:
        base = root.get_submodule(target)
        for path, module in base.named_modules(prefix=target):
            if isinstance(module, PRUNABLE) and path not in ignore:
                layers[path] = module
    return layers


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(total, nonzero) of the effective parameters, masks applied."""
    total = nonzero = 0
    for sub in module.modules():
        for name, p in sub._parameters.items():
            if p is None:
                continue
            w = effective_weight(sub, name.removesuffix("_orig")) if name.endswith("_orig") else p
            total += w.numel()
            nonzero += int(torch.count_nonzero(w))
    return total, nonzero
