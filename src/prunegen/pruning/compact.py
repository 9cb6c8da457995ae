"""Physically remove masked channel groups (Torch-Pruning): the compact generator computes what the masked one does."""

from torch import nn

from prunegen.masks import forget_alive_channels, unmasked_copy
from prunegen.pruning import structured as st


def compact(generator: nn.Module, ignore: list[str] = ()) -> nn.Module:
    """A copy of `generator` with every fully masked channel group removed (masks made permanent)."""
    plain = unmasked_copy(generator)
    forget_alive_channels(plain)  # traced and pruned as a plain network: the dead channels go
    graph = st.dependency_graph(plain)  # traced once: the groups are found and pruned on the same graph
    groups = st.groups_in(plain, graph, ignore)
    dead = {g.root: (~st.kept_channels(generator, g)).nonzero().flatten().tolist() for g in groups}
    for g in groups:
        if dead[g.root]:
            layer = plain.get_submodule(g.root)
            graph.get_pruning_group(layer, graph.get_pruner_of_module(layer).prune_out_channels, dead[g.root]).prune()
    if hasattr(plain, "compacted"):  # attributes a network keeps beside its layers' shapes (diffusers' .channels)
        plain.compacted()
    return plain


def generator_paths(paths: list[str]) -> list[str]:
    """Module paths under `generator.`, made relative to the generator (config paths are the model's)."""
    return [p.removeprefix("generator.") for p in paths if p.startswith("generator.")]
