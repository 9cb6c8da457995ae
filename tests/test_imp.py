"""GAN-LTH's iterative magnitude pruning with full rounds, its two controls and the paper's configurations."""

import pickle

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from prunegen.masks import effective_weight, get_mask, prunable_layers
from prunegen.pruning.imp import IterativeMagnitudePruning
from prunegen.pruning.schedules import Geometric
from prunegen.run.rng import RNGStateCallback
from prunegen.train import train

IMP = ["pruning=imp", "pruning.rounds=3", "pruning.epochs_per_round=1", "trainer.max_epochs=3", "model.ema_decay=0.9",
       "metrics.every_n_epochs=null", "metrics.num_samples=32", "metrics.batch_size=32", "callbacks.sample_grid=null"]


def test_geometric_schedule_table():
    s = Geometric(rate=0.2, rounds=11, epochs_per_round=2)
    cumulative = [0.0, 0.2, 0.36, 0.488, 0.5904, 0.67232, 0.737856, 0.7902848, 0.83222784, 0.865782272, 0.8926258176]
    assert [s.sparsity(r) for r in range(11)] == pytest.approx(cumulative)
    removed = [s.sparsity(r + 1) - s.sparsity(r) for r in range(10)]  # of all weights, per prune
    assert removed[:3] == pytest.approx([0.2, 0.16, 0.128])
    assert [d / (1 - s.sparsity(r)) for r, d in enumerate(removed)] == pytest.approx([0.2] * 10)  # of what remains
    assert s.final == pytest.approx(0.8926258176) and s.max_epochs == 22
    assert [s.is_round(e) for e in range(6)] == [False, True, False, True, False, True]
    assert not s.is_round(21) and s.ends_round(21)  # the last round is scored, not pruned
    assert [s(e) for e in range(5)] == pytest.approx([0.0, 0.2, 0.2, 0.36, 0.36])
    assert s(21) == pytest.approx(s.final)
    with pytest.raises(ValueError, match="pruning.rate"):
        Geometric(rate=1.0)


class Probe(Callback):
    """Placed after the pruning callback: copies of the state right after each round's resets."""

    def __init__(self) -> None:
        self.initial, self.after = {}, []

    def on_fit_start(self, trainer, pl_module):
        self.initial = {k: v.clone() for k, v in pl_module.state_dict().items()}

    def on_train_epoch_end(self, trainer, pl_module):
        self.after.append({
            "state": {k: v.clone() for k, v in pl_module.state_dict().items()},
            "opt_states": [len(opt.state) for opt in trainer.optimizers],
            "masks": {p: get_mask(m).clone() for p, m in prunable_layers(pl_module, ["generator"]).items()},
            "ema_equals_g": all(torch.equal(effective_weight(m, n.removesuffix("_orig")), p_ema)
                                for (m, n, p_ema) in _ema_pairs(pl_module)),
        })


def _ema_pairs(pl_module):
    for m_ema, m in zip(pl_module.ema.modules(), pl_module.generator.modules()):
        ema_params = dict(m_ema.named_parameters(recurse=False))
        for name, _ in m.named_parameters(recurse=False):
            yield m, name, ema_params[name.removesuffix("_orig")]


def _fit(make_cfg, *overrides, callbacks=(), ckpt_dir=None, ckpt_path=None, stop_after=None):
    cfg = make_cfg(*IMP, *overrides)
    L.seed_everything(cfg.seed)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    imp, evaluation = instantiate(cfg.pruning), instantiate(cfg.metrics)
    extra = [RNGStateCallback()]
    if ckpt_dir:
        extra.append(ModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_epochs=1, save_top_k=-1))
    if stop_after is not None:
        extra.append(StopAfter(stop_after))
    trainer = L.Trainer(max_epochs=cfg.trainer.max_epochs, limit_train_batches=2, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, enable_checkpointing=bool(ckpt_dir),
                        callbacks=[imp, evaluation, *callbacks, *extra])
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model, imp, trainer


class StopAfter(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def test_round_resets_d_ema_and_optimizers(make_cfg):
    probe = Probe()
    model, imp, _ = _fit(make_cfg, "pruning.init=xavier_uniform", callbacks=[probe])
    init, after = probe.initial, probe.after[0]["state"]
    for key, value in init.items():
        if key.startswith("discriminator."):
            assert torch.equal(after[key], value), key  # D bit for bit back at its initial weights (spectral norm u, v too)
        if key.startswith("generator."):  # every weight (pruned or not), BN statistic and bias rewound
            orig = key.removesuffix(".weight") + ".weight_orig"
            assert torch.equal(after[orig] if orig in after else after[key], value), key
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in _sub(init, "discriminator.").items())
    assert probe.after[0]["opt_states"] == [0, 0] and probe.after[2]["opt_states"] != [0, 0]
    assert probe.after[0]["ema_equals_g"] and probe.after[1]["ema_equals_g"]
    rows = imp.round_rows
    assert [r["round"] for r in rows] == [0, 1, 2]
    assert [r["sparsity"] for r in rows] == pytest.approx([0.0, 0.2, 0.36], abs=1e-3)
    assert all(r["fid"] is not None and r["fid_best"] == r["fid"] for r in rows)
    assert imp.record(None, model)["pruning"]["rounds"] == rows


def _sub(state, prefix):
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def test_resume_between_rounds_gives_same_masks_and_rows(make_cfg, tmp_path):
    full_model, full, _ = _fit(make_cfg)
    _fit(make_cfg, ckpt_dir=tmp_path / "ckpt", stop_after=1)  # "killed" after round 1's prune
    model, resumed, _ = _fit(make_cfg, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    a = {p: get_mask(m) for p, m in prunable_layers(full_model, ["generator"]).items()}
    b = {p: get_mask(m) for p, m in prunable_layers(model, ["generator"]).items()}
    assert all(torch.equal(a[p], b[p]) for p in a)
    assert len(resumed.round_rows) == len(full.round_rows) == 3
    for x, y in zip(full.round_rows, resumed.round_rows):
        assert x.keys() == y.keys()
        assert x == pytest.approx(y, rel=1e-5), (x, y)


def test_random_pruning_control_reaches_same_sparsities(make_cfg):
    _, imp, _ = _fit(make_cfg)
    rnd_model, rnd, _ = _fit(make_cfg, "pruning.criterion=random")
    assert [r["sparsity"] for r in rnd.round_rows] == pytest.approx([r["sparsity"] for r in imp.round_rows], abs=1e-4)
    assert rnd.record(None, rnd_model)["pruning"]["protocol"] == "random_pruning"
    _, late, _ = _fit(make_cfg, "pruning.criterion=random", "pruning.start_round=1", "trainer.max_epochs=2")
    assert [r["round"] for r in late.round_rows] == [1, 2]  # a control on the last rounds only
    assert [r["sparsity"] for r in late.round_rows] == pytest.approx([0.2, 0.36], abs=1e-3)


def test_random_ticket_has_imp_masks_and_other_weights(make_cfg, tmp_path):
    masks_file = tmp_path / "imp_masks.pt"
    imp_model, imp, _ = _fit(make_cfg, f"pruning.save_masks={masks_file}")
    probe = Probe()
    model, ticket, _ = _fit(make_cfg, f"pruning.ticket_masks={masks_file}", "pruning.save_masks=null", callbacks=[probe])
    imp_layers, layers = prunable_layers(imp_model, ["generator"]), prunable_layers(model, ["generator"])
    for path in imp_layers:
        assert torch.equal(get_mask(imp_layers[path]), get_mask(layers[path])), path
        assert not torch.equal(imp.rewinder.weights[f"{path}.weight"], ticket.rewinder.weights[f"{path}.weight"])
    assert [r["sparsity"] for r in ticket.round_rows] == pytest.approx([r["sparsity"] for r in imp.round_rows])
    imp_d = _sub(imp.resetter.weights, "discriminator.")
    assert all(torch.equal(v, ticket.resetter.weights[k]) for k, v in imp_d.items())  # same D init: only G re-drawn
    assert probe.after[0]["opt_states"] == [0, 0]
    late_model, late, _ = _fit(make_cfg, f"pruning.ticket_masks={masks_file}", "pruning.save_masks=null",
                               "pruning.start_round=2", "trainer.max_epochs=1")
    late_layers = prunable_layers(late_model, ["generator"])
    assert all(torch.equal(get_mask(imp_layers[p]), get_mask(late_layers[p])) for p in imp_layers)
    assert [r["round"] for r in late.round_rows] == [2]


@pytest.mark.parametrize("overrides, match", [
    (["trainer.max_epochs=4"], r"trainer.max_epochs.*pruning.rounds.*pruning.epochs_per_round"),
    (["pruning.ticket_masks=/nonexistent/imp_masks.pt"], "pruning.ticket_masks"),
    (["pruning.reset=[critic]"], "pruning.reset"),
])
def test_bad_settings_fail_before_training(make_cfg, overrides, match):
    cfg = make_cfg(*IMP, *overrides)
    with pytest.raises(ValueError, match=match):
        train(cfg)


@pytest.mark.parametrize("kwargs, key", [({"rate": 0}, "rate"), ({"rewind": None}, "rewind"),
                                         ({"init": "orthogonal"}, "init"), ({"rewind": "epoch_3"}, "rewind"),
                                         ({"start_round": 1}, "start_round"), ({"start_round": 5, "rounds": 5}, "start_round")])
def test_bad_constructor_args(kwargs, key):
    with pytest.raises(ValueError, match=f"pruning.{key}"):
        IterativeMagnitudePruning(**{"epochs_per_round": 2, **kwargs})


def test_digits_paper_experiment_composes(make_cfg):
    cfg = make_cfg("experiment=paper/gan_lth_digits", tiny=False)
    assert cfg.trainer.max_epochs == cfg.pruning.rounds * cfg.pruning.epochs_per_round
    assert cfg.pruning._target_.endswith("IterativeMagnitudePruning") and cfg.pruning.reset == ["discriminator"]


def _write_cifar(root, n_train=40, n_test=20):
    """CIFAR-10's python format (pickled dicts of uint8 rows) in root/cifar-10-batches-py."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else n_train // 5
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": [int(i % 10) for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))


@pytest.mark.slow
def test_sngan_cifar10_paper_experiment_trains_two_steps_per_round(make_cfg, tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)  # fake files, not torchvision's md5s
    _write_cifar(tmp_path / "data")
    cfg = make_cfg("experiment=paper/gan_lth_sngan_cifar10", f"data.root={tmp_path / 'data'}", "trainer=cpu",
                   "pruning.rounds=2", "pruning.epochs_per_round=1", "trainer.max_epochs=2", "trainer.limit_train_batches=2",
                   "pruning.score_every_n_epochs=null", "data.batch_size=4", "logger=none", "metrics.extractor=classifier",
                   "metrics.min_extractor_accuracy=0", "metrics.min_extractor_images=0",
                   "metrics.num_samples=32", "metrics.batch_size=32", "data.eval_max_images=40",
                   "trainer.enable_progress_bar=false", "callbacks.sample_grid=null", tiny=False)
    assert (cfg.model.generator.ngf, cfg.model.generator.latent_dim, cfg.model.discriminator.ndf) == (256, 128, 128)
    assert cfg.model.n_critic == 5 and cfg.model.ema_decay == 0.999 and cfg.pruning.init == "xavier_uniform"
    record, objects = train(cfg)
    assert record["status"] == "completed"
    rows = record["pruning"]["rounds"]
    assert [r["round"] for r in rows] == [0, 1] and rows[1]["sparsity"] == pytest.approx(0.2, abs=1e-4)
    assert objects["trainer"].global_step > 0
    assert "generator.stem" not in prunable_layers(objects["model"], ["generator"], cfg.pruning.ignore)


@pytest.mark.slow
def test_early_bird_distance_and_ticket(make_cfg):
    from prunegen.pruning.early_bird import max_pairwise_distance

    a = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    assert max_pairwise_distance([a, a.clone(), torch.tensor([1, 0, 1, 0], dtype=torch.bool)]) == 0.5
    cfg = make_cfg("pruning=early_bird", "pruning.window=2", "pruning.tolerance=0.99", "pruning.final_sparsity=0.4",
                   "trainer.max_epochs=4", "callbacks.sample_grid=null")
    record, objects = train(cfg)
    bird = record["pruning"]["early_bird"]
    assert bird["epoch"] == 1 and bird["max_pairwise_distance"] <= 0.99  # the first epoch with 2 masks to compare
    assert bird["dense_epochs_saved_fraction"] == pytest.approx(0.5)
    assert objects["pruning"].sparsity(objects["model"]) == pytest.approx(0.4, abs=1e-3)
    cfg = make_cfg("pruning=early_bird", "pruning.tolerance=0.0", "trainer.max_epochs=2", "callbacks.sample_grid=null")
    cfg.paths.output_dir += "_never"
    never = train(cfg)[0]
    assert never["pruning"]["early_bird"] is None and never["generator"]["sparsity"] == 0.0
