"""Masks live in the module's state through torch.nn.utils.prune (`<name>_orig` + `<name>_mask`)."""

import copy
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


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


def restore_masks(root: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Re-create the prune reparametrization for every `*_mask` key so a strict load of a pruned state works."""
    for key in state_dict:
        if not is_mask_key(key):
            continue
        path, pname = key.rsplit(".", 1)
        module, name = root.get_submodule(path), pname[: -len("_mask")]
        if not is_masked(module, name):
            prune.identity(module, name)


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
    remove_masks(plain)
    return plain


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
