"""The pruning seam without Lightning: gradient statistics from hooks, and the engine's scores -> keep -> masks."""

import pytest
import torch
from torch import nn

from prunegen.masks import get_mask, set_mask
from prunegen.pruning.criteria import resolve
from prunegen.pruning.engine import PruningEngine, mask_strategy
from prunegen.pruning.stats import GradientStatistics


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_hooks_accumulate_grad_squared_and_weight_times_grad_over_backward_passes():
    net = _net()
    set_mask(net[0], "weight", (torch.arange(12).view(4, 3) % 2).float())  # the product uses the masked weight
    layers = {"0": net[0], "2": net[2]}
    stats = GradientStatistics()
    stats.install(layers)
    grads = {p: [] for p in layers}
    for seed in (1, 2):
        net.zero_grad()
        net(torch.randn(5, 3, generator=torch.Generator().manual_seed(seed))).square().sum().backward()
        for p, m in layers.items():
            grads[p].append(m.weight_orig.grad.clone() if p == "0" else m.weight.grad.clone())
    stats.remove()
    net(torch.randn(5, 3)).sum().backward()  # removed: no longer counted
    weight = {"0": net[0].weight_orig * get_mask(net[0]), "2": net[2].weight}
    for p in layers:
        assert torch.allclose(stats.for_layer(p)["grad_sq"], grads[p][0] ** 2 + grads[p][1] ** 2)
        assert torch.allclose(stats.for_layer(p)["grad_w"], weight[p].detach() * (grads[p][0] + grads[p][1]))
    assert stats.for_layer("nowhere") == {}


def test_state_round_trip_reduce_and_the_zero_gradient_error():
    stats = GradientStatistics()
    stats.load_state_dict({"a": {"grad_sq": torch.zeros(2, 2), "grad_w": torch.ones(2, 2)}})
    with pytest.raises(RuntimeError, match=r"pruning.criterion='taylor' needs the generator's gradients.*epoch 4"):
        stats.check_nonzero("taylor", epoch=4)
    stats.reduce(lambda t: t + 1)  # DDP passes the sum over ranks
    stats.check_nonzero("taylor", epoch=4)
    again = GradientStatistics()
    again.load_state_dict(stats.state_dict())
    assert set(again.state_dict()) == {"a"}
    assert torch.equal(again.for_layer("a")["grad_sq"], torch.ones(2, 2))
    assert torch.equal(again.for_layer("a")["grad_w"], torch.full((2, 2), 2.0))


def test_engine_scores_with_the_statistics_and_prunes_to_a_target():
    net = _net()
    layers = {"0": net[0], "2": net[2]}
    stats = GradientStatistics()
    stats.load_state_dict({p: {"grad_sq": torch.rand(m.weight.shape), "grad_w": torch.randn(m.weight.shape)}
                           for p, m in layers.items()})
    engine = PruningEngine(resolve("gradient"), mask_strategy("unstructured", ["0", "2"], [], "layer"))
    scores, alive = engine.scores(net, stats, seed=0)
    assert all(torch.equal(scores[p], stats.for_layer(p)["grad_sq"]) and alive[p].all() for p in layers)
    assert engine.prune_to(net, 0.5, stats) == {"target": 0.5}
    for p, m in layers.items():
        s = stats.for_layer(p)["grad_sq"]
        assert torch.equal(get_mask(m).bool(), s > s.flatten().kthvalue(s.numel() // 2).values)
    assert engine.sparsity(net) == pytest.approx(0.5)
    assert [r["layer"] for r in engine.report(net)] == ["0", "2"]
