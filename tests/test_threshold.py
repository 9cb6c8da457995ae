"""Threshold pruning (pruning.amount=threshold): the seed's alpha x mean rule and Han's alpha x std rule."""

import json
import logging
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from prunegen.deploy.compact import bitmask_decode, bitmask_encode
from prunegen.masks import get_mask, prunable_layers
from prunegen.pruning import PruningCallback
from prunegen.pruning.structured import kept_channels
from prunegen.pruning.threshold import references, threshold_keep
from prunegen.train import train

SCORES = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0]), "b": torch.tensor([[0.1, 0.2], [0.3, 0.4]])}


def _all_alive(scores):
    return {k: torch.ones_like(s, dtype=torch.bool) for k, s in scores.items()}


def test_layer_mean_masks_exactly_the_units_below_alpha_mean():
    alive = _all_alive(SCORES)
    refs = references(SCORES, alive, "mean", "layer")
    assert refs == pytest.approx({"a": 4.0, "b": 0.25})
    keep, rows = threshold_keep(SCORES, alive, 0.8, refs)  # thresholds 3.2 and 0.2
    assert keep["a"].tolist() == [False, False, False, True, True]
    assert keep["b"].tolist() == [[False, True], [True, True]]  # 0.2 is not below 0.2: kept
    assert [r["masked"] for r in rows] == [3, 1] and rows[0]["threshold"] == pytest.approx(3.2)


def test_global_mean_uses_one_reference_over_all_layers():
    alive = _all_alive(SCORES)
    refs = references(SCORES, alive, "mean", "global")
    mean = (1 + 2 + 3 + 4 + 10 + 0.1 + 0.2 + 0.3 + 0.4) / 9
    assert refs == pytest.approx({"a": mean, "b": mean})
    keep, _ = threshold_keep(SCORES, alive, 1.0, refs)
    assert keep["a"].tolist() == [False, False, True, True, True] and not keep["b"].any()


def test_std_reference_is_hans_std_of_the_surviving_weights():
    w = {"a": torch.tensor([-3.0, -1.0, 0.5, 1.0, 3.0, 0.0])}
    alive = {"a": torch.tensor([True, True, True, True, True, False])}  # the 0.0 was pruned before
    refs = references({"a": w["a"].abs()}, alive, "std", "layer", w)
    assert refs["a"] == pytest.approx(torch.tensor([-3.0, -1.0, 0.5, 1.0, 3.0]).std(correction=0).item())
    keep, _ = threshold_keep({"a": w["a"].abs()}, alive, 0.5, refs)  # threshold ~1.02
    assert keep["a"].tolist() == [True, False, False, False, True, False]


def test_a_second_round_never_revives_and_leaves_masked_units_out_of_the_reference():
    scores = {"a": torch.tensor([9.0, 1.0, 2.0, 3.0, 4.0])}
    alive = {"a": torch.tensor([False, True, True, True, True])}  # the best unit was masked earlier
    refs = references(scores, alive, "mean", "layer")
    assert refs["a"] == pytest.approx(2.5)  # the masked 9.0 is not in the reference
    keep, rows = threshold_keep(scores, alive, 1.0, refs)
    assert keep["a"].tolist() == [False, False, False, True, True]
    assert rows[0]["masked"] == 3 and rows[0]["sparsity"] == pytest.approx(0.6)


def test_max_sparsity_binds_keeps_the_best_and_says_so():
    scores = {"a": torch.arange(10.0)}
    keep, rows = threshold_keep(scores, _all_alive(scores), 1.5, {"a": 4.5}, max_sparsity=0.5)  # would mask 7
    assert keep["a"].tolist() == [False] * 5 + [True] * 5
    assert rows[0]["capped"] and rows[0]["masked"] == 5
    keep, rows = threshold_keep(scores, _all_alive(scores), 0.5, {"a": 4.5}, max_sparsity=0.5)  # masks 3: free
    assert not rows[0]["capped"] and rows[0]["masked"] == 3


@pytest.mark.parametrize("kwargs, key", [
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": -1.0}, "alpha"),
    ({"reference": "median"}, "reference"),
    ({"amount": "budget"}, "amount"),
    ({"max_sparsity": 1.5}, "max_sparsity"),
    ({"reference": "std", "criterion": "gradient"}, "reference=std"),
    ({"reference": "std", "granularity": "structured"}, "reference=std"),
])
def test_bad_threshold_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        PruningCallback(**{"amount": "threshold", **kwargs})


def _model(make_cfg):
    L.seed_everything(0)
    return instantiate(make_cfg("data.image_size=32").model)


def _set_stats(cb, model, seed=0):
    """Hand-made gradient statistics, as the hooks would accumulate them."""
    g = torch.Generator().manual_seed(seed)
    cb.stats.load_state_dict({p: {"grad_sq": torch.rand(m.weight.shape, generator=g),
                                  "grad_w": torch.randn(m.weight.shape, generator=g)}
                              for p, m in prunable_layers(model, ["generator"]).items()})


@pytest.mark.parametrize("criterion", ["magnitude", "gradient", "taylor"])
def test_unstructured_round_masks_each_layer_below_alpha_mean(make_cfg, criterion):
    model = _model(make_cfg)
    cb = PruningCallback(amount="threshold", criterion=criterion, alpha=0.7)
    _set_stats(cb, model)
    layers = prunable_layers(model, ["generator"])
    expected = {}
    for path, m in layers.items():
        s = {"magnitude": m.weight.detach().abs(), "gradient": cb.stats.for_layer(path).get("grad_sq"),
             "taylor": cb.stats.for_layer(path).get("grad_w", torch.zeros(1)).abs()}[criterion]
        expected[path] = s >= 0.7 * s.mean()
    rows = cb.prune_threshold(model)
    for path, m in layers.items():
        assert torch.equal(get_mask(m).bool(), expected[path]), path
    assert [r["masked"] for r in rows] == [int((~expected[p]).sum()) for p in layers]
    assert cb.sparsity(model) == pytest.approx(1 - sum(int(e.sum()) for e in expected.values()) / sum(e.numel() for e in expected.values()))


@pytest.mark.parametrize("criterion", ["magnitude", "gradient", "taylor"])
def test_structured_round_masks_the_channel_groups_below_alpha_mean(make_cfg, criterion):
    model = _model(make_cfg)
    cb = PruningCallback(amount="threshold", granularity="structured", criterion=criterion, alpha=1.0)
    cb.setup(None, model, "fit")
    _set_stats(cb, model)
    before = {}
    scores, alive = cb.engine.scores(model, cb.stats, seed=0)
    for key, s in scores.items():
        before[key] = s >= s.mean()
    cb.prune_threshold(model)
    for target, groups in cb.strategy.groups.items():
        for g in groups:
            kept = kept_channels(model.generator, g)
            assert torch.equal(kept, before[f"{target}.{g.root}"]), g.root
            assert 0 < kept.sum() < g.size


def test_rounds_in_training_record_thresholds_and_match_the_masks(make_cfg, tmp_path):
    cfg = make_cfg("pruning=threshold", "pruning.criterion=gradient", "pruning.start_epoch=0", "pruning.end_epoch=1",
                   "pruning.every_n_epochs=1", "pruning.alpha=0.5", "pruning.max_sparsity=0.6", "trainer.max_epochs=2",
                   "callbacks.sample_grid=null")
    record, objects = train(cfg)
    saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    part = saved["pruning"]
    layers = prunable_layers(objects["model"], ["generator"])
    n = sum(get_mask(m).numel() for m in layers.values())
    zeros = sum(int((get_mask(m) == 0).sum()) for m in layers.values())
    assert part["amount"] == "threshold" and part["target_sparsity"] is None and part["alpha"] == 0.5
    assert part["achieved_sparsity"] == pytest.approx(zeros / n)
    assert [r["epoch"] for r in part["rounds"]] == [0, 1]
    first, second = part["rounds"]
    assert second["achieved_sparsity"] >= first["achieved_sparsity"] > 0
    for row in second["layers"]:  # max_sparsity is a per-layer floor under the threshold
        assert row["sparsity"] <= 0.6 + 1 / row["units"]
        assert row["threshold"] == pytest.approx(0.5 * row["reference"])
    assert {r["layer"]: r["sparsity"] for r in part["layers"]} == pytest.approx(
        {p: float((get_mask(m) == 0).float().mean()) for p, m in layers.items()})


def test_max_sparsity_binding_is_logged(make_cfg, caplog):
    model = _model(make_cfg)
    cb = PruningCallback(amount="threshold", alpha=3.0, max_sparsity=0.5)
    with caplog.at_level(logging.INFO):
        rows = cb.prune_threshold(model)
    assert all(r["capped"] for r in rows)
    assert "pruning.max_sparsity=0.5 binds on generator.net.0" in caplog.text
    for m in prunable_layers(model, ["generator"]).values():
        assert (get_mask(m) == 0).float().mean().item() == pytest.approx(math.floor(0.5 * m.weight.numel()) / m.weight.numel())


@pytest.mark.slow
def test_resume_across_a_threshold_round_is_exact(make_cfg, tmp_path):
    """Resumed from the checkpoint of epoch 0 (after the first round), the run crosses the rounds of epochs 1
    and 2 and ends with the masks and round records of the uninterrupted run."""
    common = ["pruning=threshold", "pruning.granularity=structured", "pruning.criterion=taylor", "pruning.start_epoch=0",
              "pruning.end_epoch=2", "pruning.every_n_epochs=1", "pruning.alpha=1.0", "callbacks.sample_grid=null",
              "trainer.max_epochs=3"]
    cfg = make_cfg(*common, "callbacks.model_checkpoint.save_top_k=-1")
    cfg.paths.output_dir = str(tmp_path / "full")
    full, full_obj = train(cfg)
    (first,) = (tmp_path / "full" / "checkpoints").glob("epoch=0-*.ckpt")
    cfg = make_cfg(*common, f"ckpt_path='{first}'")
    cfg.paths.output_dir = str(tmp_path / "resumed")
    resumed, resumed_obj = train(cfg)
    a, b = (prunable_layers(o["model"], ["generator"]) for o in (full_obj, resumed_obj))
    for path in a:
        assert torch.equal(get_mask(a[path]), get_mask(b[path])), path
    assert full["pruning"]["rounds"] == resumed["pruning"]["rounds"]
    assert [r["epoch"] for r in resumed["pruning"]["rounds"]] == [0, 1, 2]
    assert full["pruning"]["achieved_sparsity"] > full["pruning"]["rounds"][0]["achieved_sparsity"] > 0


def test_bitmask_storage_is_lossless_and_smaller_when_sparse():
    w = torch.randn(64, 32, 4, 4)
    w[torch.rand(w.shape) < 0.9] = 0
    state = {"net.0.weight": w, "net.1.bias": torch.randn(32), "net.1.num_batches_tracked": torch.tensor(3)}
    blob = bitmask_encode(state)
    back = bitmask_decode(blob)
    assert all(torch.equal(back[k], v) for k, v in state.items())
    assert blob["net.0.weight"]["bits"].numel() == w.numel() // 8
    assert blob["net.0.weight"]["values"].numel() == int(w.count_nonzero())


def test_han_experiment_composes_to_hans_rule(make_cfg):
    cfg = make_cfg("experiment=han_digits", tiny=False)
    cb = instantiate(cfg.pruning)
    assert (cb.amount, cb.reference, cb.criterion, cb.granularity, cb.scope) == ("threshold", "std", "magnitude", "unstructured", "layer")
    assert cb.schedule.is_round(99) and cb.schedule.last_round_epoch == 114 < cfg.trainer.max_epochs
    assert cfg.distill is not None and cfg.distill.output_weight > 0
