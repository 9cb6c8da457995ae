"""Channel groups from Torch-Pruning's DependencyGraph, masked as a whole during training.

A group is a layer's output channels together with everything that must go with them: its bias,
the BatchNorm or GroupNorm that follows, and the next layers' input channels (a skip concatenation
makes part of a consumer's channels a member: `Member.index`). Masking all members (instead of
removing them) keeps optimizers, DDP and checkpoints valid; `compact` removes them afterwards.
A group through a GroupNorm keeps a multiple of its group count (the group count stays, as
Torch-Pruning's compact layer keeps it; a masked GroupNorm normalises its alive channels only: masks.py).
An iterative generator (a diffusion UNet) is traced through one step of its network (`step_inputs`).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from prunegen.generator import Generator, example_inputs, is_iterative
from prunegen.masks import NORMS, forget_alive_channels, get_mask, prunable_layers, set_mask, trainable, unmasked_copy
from prunegen.pruning.unstructured import weight_report


@dataclass(frozen=True)
class Member:
    path: str  # module path relative to the pruned root (e.g. "net.3")
    param: str  # "weight" or "bias"
    dim: int  # the channel dimension of that parameter
    # positions in that dimension and the group channel each one carries (a concatenation maps a group's channels
    # to a slice of its consumer, or twice when both halves come from the same group); None: all, in order
    index: tuple[int, ...] | None = None
    root_index: tuple[int, ...] | None = None

    def per_channel(self, t: torch.Tensor, size: int) -> torch.Tensor:
        """(size, k) view of `t` (shaped like the parameter): the slices of each group channel, summed where a
        channel occurs twice."""
        t = t.transpose(0, self.dim)
        if self.index is None:
            return t.reshape(size, -1)
        rows = t[list(self.index)].reshape(len(self.index), -1)
        return rows.new_zeros(size, rows.shape[1]).index_add_(0, torch.tensor(self.root_index, device=rows.device), rows)

    def channel_mask(self, keep: torch.Tensor, length: int) -> torch.Tensor:
        """(length,) mask over the parameter's channel dimension from a group's keep decision."""
        if self.index is None:
            return keep.clone()
        mask = keep.new_ones(length)
        mask[list(self.index)] = keep[list(self.root_index)]
        return mask


@dataclass(frozen=True)
class ChannelGroup:
    root: str  # the layer whose output channels define the group
    size: int
    members: tuple[Member, ...]
    multiple: int = 1  # kept channels are a multiple of it (the group count of the GroupNorms it passes)

    @property
    def out_member(self) -> Member:
        return self.members[0]


def _members(module: nn.Module, path: str, out: bool, index: tuple | None, root_index: tuple | None) -> list[Member]:
    """The parameters of one dependency and the dimension that holds the channels."""
    if isinstance(module, NORMS):
        if isinstance(module, nn.GroupNorm) and not module.affine:
            raise ValueError(f"{path}: a GroupNorm without affine parameters cannot be masked; ignore its channels (pruning.ignore)")
        return [Member(path, p, 0, index, root_index) for p in ("weight", "bias")] if module.affine else []
    transposed = isinstance(module, nn.ConvTranspose2d)
    weight_dim = (1 if transposed else 0) if out else (0 if transposed else 1)
    members = [Member(path, "weight", weight_dim, index, root_index)]
    if out and getattr(module, "bias", None) is not None:
        members.append(Member(path, "bias", 0, index, root_index))
    return members


def dependency_graph(generator: Generator) -> tp.DependencyGraph:
    """Torch-Pruning's graph of a plain (unmasked) generator, traced on two latents (and labels), or through
    one step of its network when it samples iteratively (a diffusion UNet's eps(x_t, t))."""
    if is_iterative(generator):
        return tp.DependencyGraph().build_dependency(generator, example_inputs=generator.step_inputs(2),
                                                     forward_fn=lambda net, inputs: net.step(*inputs))
    z, labels = example_inputs(generator, 2, labels="zeros")
    return tp.DependencyGraph().build_dependency(generator, example_inputs=(z,) if labels is None else (z, labels))


def _index(graph: tp.DependencyGraph, item, out: bool, size: int) -> tuple[tuple | None, tuple | None]:
    """(positions, group channels) of a group item; (None, None) when its channels are the group's, in order."""
    module, pruner = item.dep.target.module, graph.get_pruner_of_module(item.dep.target.module)
    length = pruner.get_out_channels(module) if out else pruner.get_in_channels(module)
    index, root = tuple(map(int, item.idxs)), tuple(map(int, item.root_idxs))
    return (None, None) if length == size and index == root == tuple(range(size)) else (index, root)


def channel_groups(generator: nn.Module, ignore: list[str] = ()) -> list[ChannelGroup]:
    """Prunable channel groups of `generator`; output layers (no consumer) and `ignore` are left out."""
    plain = unmasked_copy(generator)
    forget_alive_channels(plain)  # traced as a plain network (a masked GroupNorm's gather is no dependency)
    return groups_in(plain, dependency_graph(plain), ignore)


def groups_in(plain: nn.Module, graph: tp.DependencyGraph, ignore: list[str] = ()) -> list[ChannelGroup]:
    """`channel_groups` of a plain generator whose graph is already traced."""
    names = {m: n for n, m in plain.named_modules()}
    ignored = [plain.get_submodule(p) for p in [*ignore, *getattr(plain, "fixed_channels", list)()]]
    groups = []
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=(nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        root, members, consumers, multiple = None, [], 0, 1
        size = _channel_count(group.items[0].dep.target.module)
        for item in group.items:
            module = item.dep.target.module
            if module not in names:  # functional nodes (ReLU, reshape) hold no parameters
                continue
            out = graph.is_out_channel_pruning_fn(item.dep.handler)
            root = root or names[module]
            consumers += not out
            members += _members(module, names[module], out, *_index(graph, item, out, size))
            if isinstance(module, nn.GroupNorm):
                multiple = math.lcm(multiple, module.num_groups)
        if root is not None and consumers:  # a layer nobody consumes is an output layer
            groups.append(ChannelGroup(root, size, tuple(members), multiple))
    order = list(names.values())
    return sorted(groups, key=lambda g: order.index(g.root))


def _channel_count(layer: nn.Module) -> int:
    return layer.out_channels if hasattr(layer, "out_channels") else layer.out_features


def kept_channels(generator: nn.Module, group: ChannelGroup) -> torch.Tensor:
    """Boolean (size,) of channels still alive, read from the masks (the module's own state)."""
    m = group.out_member
    mask = get_mask(generator.get_submodule(m.path), m.param)
    return m.per_channel(mask, group.size).any(dim=1)


def channel_scores(per_param: dict[tuple[str, str], torch.Tensor], group: ChannelGroup) -> torch.Tensor:
    """Aggregate per-weight scores of the group's members into one score per channel (sum over slices)."""
    total = torch.zeros(group.size)
    for m in group.members:
        s = per_param.get((m.path, m.param))
        if s is not None:
            total += m.per_channel(s.detach().float(), group.size).sum(dim=1).cpu()
    return total


def select_channels(
    scores: dict[str, torch.Tensor],
    alive: dict[str, torch.Tensor],
    sparsity: float,
    scope: str = "layer",
    min_keep: float = 0.0,
    round_to: int | dict[str, int] = 1,
) -> dict[str, torch.Tensor]:
    """Which channels to keep per group: the lowest-scoring `sparsity` fraction of channels is removed; a group
    keeps a multiple of `round_to` (one number, or one per group)."""
    multiple = round_to if isinstance(round_to, dict) else dict.fromkeys(scores, round_to)
    keep_counts = {}
    if scope == "layer":
        keep_counts = {r: max(1, _round_up(round((1 - sparsity) * len(s)), multiple[r], len(s))) for r, s in scores.items()}
    else:  # one threshold over mean-normalized scores; each group's best `min_keep` are reserved first
        flat = []
        for r, s in scores.items():
            s = (s / s[alive[r]].mean().clamp_min(1e-12)).masked_fill(~alive[r], -math.inf)
            s[torch.topk(s, max(1, math.ceil(min_keep * len(s)))).indices] = math.inf
            flat.append(s)
        total = sum(len(s) for s in flat)
        kept = torch.zeros(total, dtype=torch.bool)
        kept[torch.topk(torch.cat(flat), total - round(sparsity * total)).indices] = True
        for r, part in zip(scores, kept.split([len(s) for s in flat])):
            keep_counts[r] = _round_up(int(part.sum()), multiple[r], len(scores[r]))
    out = {}
    for r, s in scores.items():
        s = s.masked_fill(~alive[r], -math.inf)
        keep = torch.zeros(len(s), dtype=torch.bool)
        keep[torch.topk(s, min(keep_counts[r], int(alive[r].sum()))).indices] = True
        out[r] = keep
    return out


def _round_up(n: int, multiple: int, limit: int) -> int:
    return min(limit, max(multiple, math.ceil(n / multiple) * multiple)) if multiple > 1 else n


def member_masks(generator: nn.Module, groups: list[ChannelGroup], keep: dict[str, torch.Tensor]) -> dict[tuple[str, str], torch.Tensor]:
    """Parameter masks from channel decisions; a parameter in two groups (in- and out-channels) gets both."""
    masks: dict[tuple[str, str], torch.Tensor] = {}
    for group in groups:
        for m in group.members:
            p = trainable(generator.get_submodule(m.path), m.param)
            shape = [1] * p.dim()
            shape[m.dim] = p.shape[m.dim]
            channel = m.channel_mask(keep[group.root].to(p.device, p.dtype), p.shape[m.dim])
            masks[(m.path, m.param)] = masks.get((m.path, m.param), torch.ones_like(p)) * channel.view(shape)
    return masks


class ChannelMasks:
    """Structured strategy: the channel groups of every target generator are the units, keyed by
    `<target>.<root>`; a group is masked as a whole. Sparsity counts channels."""

    granularity = "structured"

    def __init__(self, targets: list[str], ignore: list[str], scope: str, min_keep: float = 0.0, round_to: int = 1) -> None:
        self.targets, self.ignore, self.scope = targets, ignore, scope
        self.min_keep, self.round_to = min_keep, round_to
        self.groups: dict[str, list[ChannelGroup]] = {}

    def setup(self, pl_module: nn.Module) -> None:
        for target in self.targets:
            module = pl_module.get_submodule(target)
            if not hasattr(module, "latent_dim"):
                raise ValueError(f"pruning.granularity=structured needs generator-like targets, got {target!r}")
            ignore = [p.removeprefix(f"{target}.") for p in self.ignore if p.startswith(f"{target}.")]
            self.groups[target] = channel_groups(module, ignore)

    def _groups(self) -> dict[str, tuple[str, ChannelGroup]]:
        return {f"{t}.{g.root}": (t, g) for t, groups in self.groups.items() for g in groups}

    def scores(self, pl_module: nn.Module, score: Callable[[nn.Module, str, str], torch.Tensor], bn: bool = False):
        """(scores, alive) per channel group: the member weights' scores summed per channel (BatchNorm
        scales instead when `bn`: the criterion scores BatchNorm weights)."""
        scores, alive = {}, {}
        for key, (target, g) in self._groups().items():
            gen = pl_module.get_submodule(target)
            per_param = {}
            for m in g.members:
                module = gen.get_submodule(m.path)
                if m.param == "weight" and isinstance(module, NORMS) == bn:
                    per_param[(m.path, m.param)] = score(module, f"{target}.{m.path}", "weight")
            scores[key], alive[key] = channel_scores(per_param, g), kept_channels(gen, g).cpu()
        return scores, alive

    def weights(self, pl_module: nn.Module) -> dict[str, torch.Tensor]:
        raise ValueError("pruning.reference=std (Han's rule) compares weights, not channel groups: use reference=mean")

    def select(self, scores: dict, alive: dict, sparsity: float) -> dict[str, torch.Tensor]:
        multiple = {key: math.lcm(self.round_to, g.multiple) for key, (_, g) in self._groups().items()}
        return select_channels(scores, alive, sparsity, self.scope, self.min_keep, multiple)

    def apply(self, pl_module: nn.Module, keep: dict[str, torch.Tensor]) -> None:
        for target, groups in self.groups.items():
            gen = pl_module.get_submodule(target)
            decisions = {g.root: keep[f"{target}.{g.root}"] for g in groups}
            for g in groups:
                if int(decisions[g.root].sum()) % g.multiple:
                    raise ValueError(
                        f"{target}.{g.root}: {int(decisions[g.root].sum())} channels kept, not a multiple of {g.multiple} "
                        "(the group count of the GroupNorms its channels pass): a threshold cannot keep that; "
                        "prune to a target sparsity (pruning=structured)")
            with torch.no_grad():
                for (path, name), mask in member_masks(gen, groups, decisions).items():
                    set_mask(gen.get_submodule(path), name, mask)

    def report(self, pl_module: nn.Module) -> list[dict[str, Any]]:
        rows = weight_report(prunable_layers(pl_module, self.targets, self.ignore))
        groups = self._groups()
        for row in rows:
            if row["layer"] in groups:
                target, g = groups[row["layer"]]
                row["channels"], row["channels_kept"] = g.size, int(kept_channels(pl_module.get_submodule(target), g).sum())
        return rows

    def sparsity(self, pl_module: nn.Module) -> float:
        rows = [r for r in self.report(pl_module) if "channels" in r]
        return 1 - sum(r["channels_kept"] for r in rows) / sum(r["channels"] for r in rows)
