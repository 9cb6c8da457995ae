import math

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from prunegen.masks import count_parameters, get_mask, prunable_layers
from prunegen.pruning import PruningCallback, Schedule


@pytest.mark.parametrize(
    "schedule, table",
    [
        (Schedule(0.8, 0, 0), {0: 0.8, 5: 0.8}),  # one-shot
        (Schedule(0.6, 2, 4, "linear"), {0: 0, 1: 0, 2: 0.2, 3: 0.4, 4: 0.6, 9: 0.6}),
        (Schedule(0.6, 2, 6, "linear", every=2), {2: 0.2, 3: 0.2, 4: 0.4, 6: 0.6}),  # iterative
        (Schedule(0.8, 0, 3, "cubic"), {0: 0.8 * (1 - 0.75**3), 1: 0.8 * (1 - 0.5**3), 3: 0.8}),  # AGP
    ],
)
def test_schedule_table(schedule, table):
    for epoch, expected in table.items():
        assert schedule(epoch) == pytest.approx(expected)


@pytest.mark.parametrize("kwargs, key", [
    ({"final_sparsity": 1.5}, "final_sparsity"),
    ({"final_sparsity": -0.1}, "final_sparsity"),
    ({"criterion": "bogus"}, "criterion"),
    ({"scope": "everything"}, "scope"),
    ({"ramp": "exp"}, "ramp"),
    ({"start_epoch": 3, "end_epoch": 1}, "start_epoch"),
])
def test_bad_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        PruningCallback(**kwargs)


def _model(make_cfg):
    L.seed_everything(0)
    return instantiate(make_cfg().model)


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("criterion", ["magnitude", "magnitude_l2", "random"])
def test_rounds_reach_the_scheduled_sparsity(make_cfg, scope, criterion):
    model = _model(make_cfg)
    cb = PruningCallback(criterion=criterion, scope=scope, final_sparsity=0.8, start_epoch=0, end_epoch=2)
    layers = prunable_layers(model, ["generator"])
    for epoch in range(3):
        target = cb.schedule(epoch)
        cb.prune(model, target, seed=epoch)
        total = sum(m.weight_mask.numel() for m in layers.values())
        pruned = sum(int((m.weight_mask == 0).sum()) for m in layers.values())
        assert abs(pruned - round(target * total)) <= len(layers)
        if scope == "layer":
            for m in layers.values():
                assert abs(int((m.weight_mask == 0).sum()) - target * m.weight_mask.numel()) <= 1
    assert cb.sparsity(model) == pytest.approx(0.8, abs=1e-3)


def test_masks_are_monotone_and_weights_zero(make_cfg):
    model = _model(make_cfg)
    cb = PruningCallback(final_sparsity=0.8, start_epoch=0, end_epoch=1)
    cb.prune(model, 0.4)
    first = {p: get_mask(m).clone() for p, m in prunable_layers(model, ["generator"]).items()}
    cb.prune(model, 0.8)
    for path, m in prunable_layers(model, ["generator"]).items():
        assert torch.all(get_mask(m)[first[path] == 0] == 0)  # pruned weights stay pruned
    x = model.generator(torch.randn(2, model.latent_dim))  # forward refreshes `weight`
    for m in prunable_layers(model, ["generator"]).values():
        assert torch.all(m.weight[m.weight_mask == 0] == 0)
    assert x.shape[0] == 2


def test_global_min_keep_protects_every_layer(make_cfg):
    model = _model(make_cfg)
    with torch.no_grad():  # make one layer tiny in magnitude: global pruning would empty it
        model.generator.net[0].weight.mul_(1e-6)
    PruningCallback(scope="global", final_sparsity=0.8, min_keep=0.05).prune(model, 0.8)
    stem = model.generator.net[0].weight_mask
    assert stem.sum() >= math.ceil(0.05 * stem.numel())
    PruningCallback(scope="global", final_sparsity=0.8).prune(_model(make_cfg), 0.8)  # no floor: allowed


def test_discriminator_untouched_and_biases_kept(make_cfg):
    model = _model(make_cfg)
    PruningCallback(final_sparsity=0.5).prune(model, 0.5)
    assert not any(n.endswith("_mask") for n, _ in model.discriminator.named_buffers())
    assert not any(n.endswith("bias_mask") for n, _ in model.generator.named_buffers())


def test_masks_survive_checkpoint_into_fresh_module(make_cfg, tmp_path):
    cfg = make_cfg("pruning=unstructured", "pruning.start_epoch=0", "pruning.end_epoch=0", "pruning.final_sparsity=0.6")
    L.seed_everything(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, callbacks=[instantiate(cfg.pruning)])
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "pruned.ckpt")

    fresh = type(model).load_from_checkpoint(
        tmp_path / "pruned.ckpt", generator=instantiate(cfg.model.generator),
        discriminator=instantiate(cfg.model.discriminator), optimizer_g=None, optimizer_d=None, weights_only=False,
    )
    for (path, a), b in zip(prunable_layers(model, ["generator"]).items(), prunable_layers(fresh, ["generator"]).values()):
        assert torch.equal(a.weight_mask, b.weight_mask), path
    assert count_parameters(fresh.generator) == count_parameters(model.generator)
    z = torch.randn(4, model.latent_dim)
    model.eval(), fresh.eval()
    assert torch.allclose(model.generator(z), fresh.generator(z))

    # and training resumes from it (optimizer state restores onto the pruned parameters)
    trainer2 = L.Trainer(max_epochs=2, limit_train_batches=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, limit_val_batches=0, callbacks=[instantiate(cfg.pruning)])
    trainer2.fit(instantiate(cfg.model), datamodule=dm, ckpt_path=tmp_path / "pruned.ckpt")
    assert trainer2.current_epoch == 2


def test_unknown_target_fails_before_training(make_cfg):
    from prunegen.train import train

    cfg = make_cfg("pruning=unstructured", "pruning.targets=[generator,nosuchmodule]")
    with pytest.raises(ValueError, match=r"pruning.targets.*nosuchmodule.*\['generator', 'discriminator'\]"):
        train(cfg)


def test_lightning_modelpruning_baseline_reaches_target(make_cfg):
    from prunegen.train import train

    cfg = make_cfg("pruning=lightning_modelpruning", "pruning.start_epoch=0", "pruning.end_epoch=1",
                   "pruning.every_n_epochs=1", "trainer.max_epochs=2", "pruning.final_sparsity=0.6")
    record, objects = train(cfg)
    assert record["pruning"]["method"] == "lightning_modelpruning"
    assert record["pruning"]["achieved_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert not any(n.endswith("_mask") for n, _ in objects["model"].discriminator.named_buffers())


def test_lightning_modelpruning_composes_with_the_frontier_experiment(make_cfg):
    """frontier_digits' documented baseline command: the experiment's pruning.criterion reaches the baseline."""
    cfg = make_cfg("experiment=frontier_digits", "pruning=lightning_modelpruning", "pruning.final_sparsity=0.8")
    assert instantiate(cfg.pruning).criterion == "magnitude"
    with pytest.raises(Exception, match=r"pruning.criterion must be one of \('magnitude',\).*L1 magnitude"):
        instantiate(make_cfg("pruning=lightning_modelpruning", "+pruning.criterion=taylor").pruning)


def test_criterion_as_a_target_node_declares_its_needs(make_cfg):
    """`pruning.criterion` is a name or a `_target_` node building any Criterion; the callback collects what it needs."""
    from prunegen.pruning.criteria import Criterion, Magnitude

    cfg = make_cfg("pruning=unstructured", "~pruning.criterion", "+pruning.criterion={_target_: prunegen.pruning.criteria.Magnitude, p: 2}")
    cb = instantiate(cfg.pruning)
    assert isinstance(cb.importance, Magnitude) and cb.criterion == "magnitude_l2"
    assert instantiate(make_cfg("pruning=unstructured", "pruning.criterion=taylor").pruning).importance.needs == {"weights", "gradients"}

    class FirstInput(Criterion):  # a new criterion is one class: a name, what it needs, a score per weight
        name = "first_input_channel"

        def __call__(self, module, name, stats):
            w = module.weight.detach()
            return torch.zeros_like(w).index_fill_(1, torch.tensor([0]), 1.0)

    model = _model(make_cfg)
    PruningCallback(criterion=FirstInput()).prune(model, 0.5)
    mask = get_mask(model.generator.net[3])
    assert mask[:, 0].all() and mask.sum() == pytest.approx(0.5 * mask.numel())
