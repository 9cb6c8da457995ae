import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from test_zoo import VAE_TINY

from prunegen.distill import DistillationCallback, Distiller, first_round_epoch
from prunegen.masks import unmasked_copy
from prunegen.train import train


def _generator(make_cfg):
    L.seed_everything(0)
    return instantiate(make_cfg().model.generator)


@pytest.mark.parametrize("feature_weight", [0.0, 1.0])
def test_loss_zero_for_identical_student_and_positive_otherwise(make_cfg, feature_weight):
    teacher = _generator(make_cfg).eval()
    student = unmasked_copy(teacher).eval()
    d = Distiller(teacher, feature_weight=feature_weight)
    z = torch.randn(8, teacher.latent_dim)
    loss, _, logs = d.loss(student, z, None)
    assert loss.item() == 0
    with torch.no_grad():
        student.net[0].weight.mul_(0.5)
    loss, _, logs = d.loss(student, z, None)
    assert loss.item() > 0
    if feature_weight:
        assert logs["distill/features"] > 0


def test_bad_distill_settings():
    with pytest.raises(ValueError, match="d_policy"):
        DistillationCallback(d_policy="sometimes")
    with pytest.raises(ValueError, match="adversarial_weight"):
        DistillationCallback(adversarial_weight=1.0)


@pytest.mark.parametrize("distill", ["output", "features", "adversarial"])
def test_compress_pipeline_end_to_end(make_cfg, tmp_path, distill):
    cfg = make_cfg("experiment=compress_digits", f"distill={distill}", "trainer.max_epochs=3", "pruning.start_epoch=0",
                   "pruning.end_epoch=0", "export.repeats=2", "export.batch_size=16")
    record, objects = train(cfg)
    teacher = objects["distill"].teacher
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert record["export"]["max_abs_diff"] <= 1e-5
    assert record["export"]["macs_ratio"] > 3
    assert record["generator"]["macs_effective"] == record["export"]["compact"]["macs"]
    assert {"fid", "class_coverage"} <= set(record["dense_metrics"]) and {"fid"} <= set(record["metrics"])
    assert (tmp_path / "run" / "export.json").exists() and (tmp_path / "run" / "generator_compact.pt").exists()
    # the teacher is the model before the round, bit-identical after two epochs of fine-tuning
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, frozen[k])
    student = objects["model"].generator
    assert not torch.equal(unmasked_copy(student).net[0].weight, teacher.net[0].weight)


def _fit_compress(make_cfg, order, *extra, callbacks=(), ckpt_path=None):
    """A tiny compress fit (dense epoch 0, round + teacher at its end, distillation after) with the pruning and
    distillation callbacks in `order`; returns (model, distillation callback, trainer)."""
    cfg = make_cfg("experiment=compress_digits", "trainer.max_epochs=2", "pruning.start_epoch=0", "pruning.end_epoch=0",
                   "export=none", *extra)
    L.seed_everything(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    named = {"distill": instantiate(cfg.distill), "pruning": instantiate(cfg.pruning)}
    saves = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    trainer = L.Trainer(max_epochs=cfg.trainer.max_epochs, limit_train_batches=2, logger=False, enable_checkpointing=saves,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        callbacks=[*callbacks, *(named[k] for k in order)])
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model, named["distill"], trainer


class DenseProbe(L.Callback):
    """Listed first: the generator at the end of the teacher's epoch, before any callback's epoch-end hook."""

    def __init__(self) -> None:
        self.dense = None

    def on_train_epoch_end(self, trainer, pl_module):
        if self.dense is None:
            self.dense = {k: v.clone() for k, v in unmasked_copy(pl_module.generator).state_dict().items()}


def test_teacher_is_not_trained(make_cfg):
    snap = {}
    original = DistillationCallback.start_distillation

    def spy(self, trainer, pl_module, first_epoch):
        original(self, trainer, pl_module, first_epoch)
        snap.update({k: v.clone() for k, v in self.teacher.state_dict().items()})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DistillationCallback, "start_distillation", spy)
        _, cb, trainer = _fit_compress(make_cfg, ("distill", "pruning"))
    assert snap and all(torch.equal(v, snap[k]) for k, v in cb.teacher.state_dict().items())
    assert not any(p is q for p in cb.teacher.parameters() for g in trainer.optimizers[0].param_groups for q in g["params"])


def test_teacher_is_the_dense_model_whatever_the_callback_order(make_cfg):
    """A pruning callback listed before the distillation callback: the teacher is still the dense generator
    before the round, and the run is bit for bit the run with distillation listed first."""
    runs = {}
    for order in [("pruning", "distill"), ("distill", "pruning")]:
        probe = DenseProbe()
        model, cb, _ = _fit_compress(make_cfg, order, "model.ema_decay=0.0", callbacks=[probe])
        teacher = cb.teacher.state_dict()
        assert probe.dense.keys() == teacher.keys()
        assert all(torch.equal(teacher[k], v) for k, v in probe.dense.items()), order
        assert cb.record(None, model)["distill"]["started_epoch"] == 1
        runs[order] = model.generator.state_dict()
    a, b = runs.values()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_teacher_defaults_to_the_init_checkpoint(make_cfg, tmp_path):
    from omegaconf import OmegaConf

    from prunegen.run.checkpoint import load_model

    dense_cfg = make_cfg("experiment=dense_digits", "trainer.max_epochs=1", "export=none")
    dense_cfg.paths.output_dir = str(tmp_path / "dense")
    train(dense_cfg)
    config = tmp_path / "dense" / ".hydra" / "config.yaml"  # the run folder's identity (written by train)
    if not config.is_file():
        config.parent.mkdir(exist_ok=True)
        config.write_text(OmegaConf.to_yaml(dense_cfg))
    ckpt = tmp_path / "dense" / "checkpoints" / "last.ckpt"

    cfg = make_cfg("experiment=compress_digits", f"init_ckpt={ckpt}", "pruning.start_epoch=0", "pruning.end_epoch=0",
                   "trainer.max_epochs=2", "export.repeats=2", "export.batch_size=16")
    record, objects = train(cfg)
    dense_model = load_model(ckpt)[0]
    assert dense_model.hparams.ema_decay > 0  # the recipe keeps an EMA: the teacher is the average
    dense = dense_model.ema.state_dict()
    teacher = objects["distill"].teacher.state_dict()
    assert all(torch.equal(teacher[k], v) for k, v in dense.items())
    assert record["dense_metrics"]["fid"] > 0 and record["export"]["macs_ratio"] > 3


def test_agp_recipe_composes(make_cfg):
    cfg = make_cfg("experiment=compress_digits_agp", tiny=False)
    cb = instantiate(cfg.pruning)
    assert cb.schedule(198) == 0 and 0 < cb.schedule(199) < cb.schedule(205) < 0.875 and cb.schedule(211) == 0.875
    assert cfg.distill.snapshot_epoch is None and first_round_epoch([cb]) == 199 and cfg.trainer.max_epochs == 240


def test_ema_gan_distills_exports_and_scores_the_average(make_cfg):
    """With an EMA of G, the scored weights are the average: the teacher and the student's start are the
    EMA at the round, the EMA then follows the student, and the export is the EMA's compact copy."""
    from prunegen.deploy.compact import load_compact
    from prunegen.generator import sample_generator

    cfg = make_cfg("experiment=compress_digits", "model.ema_decay=0.9", "trainer.max_epochs=3", "pruning.start_epoch=0",
                   "pruning.end_epoch=0", "export.repeats=2", "export.batch_size=16")
    at_round = {}
    original = DistillationCallback.start_distillation

    def spy(self, trainer, pl_module, first_epoch):
        if self.teacher is None:
            at_round.update({k: v.clone() for k, v in pl_module.ema.state_dict().items()})
            at_round["raw"] = pl_module.generator.net[0].weight.clone()
        original(self, trainer, pl_module, first_epoch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DistillationCallback, "start_distillation", spy)
        record, objects = train(cfg)
    cb = objects["distill"]
    model = objects["model"]
    assert cb.teacher is not None and not torch.equal(at_round["raw"], at_round["net.0.weight"])  # EMA != raw G
    assert all(torch.equal(v, at_round[k]) for k, v in cb.teacher.state_dict().items())
    assert not torch.equal(model.ema.net[0].weight, cb.teacher.net[0].weight * (model.ema.net[0].weight != 0))
    exported = load_compact(record["export"]["compact"]["path"])
    gen = torch.Generator().manual_seed(0)
    ema_images = sample_generator(model.ema, 16, None, torch.Generator().manual_seed(0))
    assert torch.allclose(sample_generator(exported, 16, None, gen), ema_images, atol=1e-5)


def test_gradient_criterion_refuses_a_round_without_gradients():
    """All-zero statistics (no gradient reached the generator over the round's epoch) would make every taylor
    score zero and the kept channels arbitrary: the round stops with an error naming the criterion."""
    from prunegen.pruning import PruningCallback

    pruning = PruningCallback(granularity="structured", criterion="taylor", final_sparsity=0.5)
    pruning.stats.load_state_dict({"generator.net.0": {"grad_sq": torch.zeros(4, 4), "grad_w": torch.zeros(4, 4)}})
    with pytest.raises(RuntimeError, match="criterion='taylor' needs the generator's gradients"):
        pruning.stats.check_nonzero(pruning.criterion, epoch=3)
    pruning.stats.for_layer("generator.net.0")["grad_sq"][0, 0] = 1.0
    pruning.stats.check_nonzero(pruning.criterion, epoch=3)


def test_vae_decoder_is_distilled_pruned_and_exported(make_cfg):
    """The same callback fine-tunes a pruned VAE decoder from the dense one (prior latents); the encoder is
    left as it was, the teacher stays frozen, and the export is the compact decoder."""
    export = ["export=default", "export.output_name=g.pt", "export.batch_size=16", "export.repeats=2"]
    cfg = make_cfg(*VAE_TINY, "model=vae", "pruning=structured", "distill=output", "pruning.start_epoch=0",
                   "pruning.end_epoch=0", "trainer.max_epochs=3", *export, tiny=False)
    encoder_after_round = {}
    original = DistillationCallback.start_distillation

    def spy(self, trainer, pl_module, first_epoch):
        original(self, trainer, pl_module, first_epoch)
        encoder_after_round.update({k: v.clone() for k, v in pl_module.encoder.state_dict().items()})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DistillationCallback, "start_distillation", spy)
        record, objects = train(cfg)
    model, teacher = objects["model"], objects["distill"].teacher
    assert encoder_after_round and all(torch.equal(v, encoder_after_round[k]) for k, v in model.encoder.state_dict().items())
    assert all(not p.requires_grad for p in teacher.parameters())
    assert record["export"]["max_abs_diff"] <= 1e-5 and record["export"]["macs_ratio"] > 3
    assert {"fid", "class_coverage"} <= set(record["dense_metrics"])
    assert objects["trainer"].callback_metrics["distill/output"] > 0


def test_discriminator_policy_needs_a_discriminator(make_cfg):
    cfg = make_cfg(*VAE_TINY, "model=vae", "pruning=structured", "distill=adversarial", tiny=False)
    with pytest.raises(ValueError, match="needs a discriminator"):
        train(cfg)


def test_frozen_student_batchnorm_trains_on_the_deployed_function(make_cfg):
    """In training mode a BatchNorm student normalises with batch statistics: even an exact copy of the teacher
    differs from it. With student_bn=frozen it computes what it will compute deployed, so the loss is zero."""
    teacher = _generator(make_cfg).eval()
    z = torch.randn(16, teacher.latent_dim)
    batch_stats = Distiller(teacher, student_bn="train").loss(unmasked_copy(teacher).train(), z, None)[0]
    frozen = Distiller(teacher, student_bn="frozen").loss(unmasked_copy(teacher).train(), z, None)[0]
    assert batch_stats.item() > 0 and frozen.item() == 0
    with pytest.raises(ValueError, match="student_bn"):
        DistillationCallback(student_bn="eval")


def test_cosine_schedule_decays_the_student_lr_from_the_first_distilled_epoch():
    """The student's lr plan is the model's Lightning scheduler: restarted when distillation starts (epoch 10 of
    20, 5 steps an epoch: 50 steps to 0), it survives a checkpoint (its origin included)."""
    from prunegen.models.objective import GeneratorLR

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    plan = GeneratorLR(opt)
    for _ in range(10 * 5):  # the dense epochs: the optimizer's lr is kept
        opt.step()
        plan.step()
    assert opt.param_groups[0]["lr"] == 1.0
    plan.restart(1e-3, decay_steps=10 * 5)
    lrs = {0: opt.param_groups[0]["lr"]}
    for k in range(1, 50):
        opt.step()
        plan.step()
        lrs[k] = opt.param_groups[0]["lr"]
        if k == 25:
            resumed = GeneratorLR(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0))
            resumed.load_state_dict(plan.state_dict())  # the schedule's origin travels in the checkpoint
    assert lrs[0] == pytest.approx(1e-3) and lrs[25] == pytest.approx(5e-4) and 0 < lrs[49] < 1e-5
    resumed.step()
    assert resumed.get_last_lr()[0] == pytest.approx(lrs[26])
    with pytest.raises(ValueError, match="lr_schedule"):
        DistillationCallback(lr_schedule="step")


class LRProbe(L.Callback):
    def __init__(self) -> None:
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_cosine_distillation_runs_its_plan_through_the_trainer(make_cfg):
    """Distillation from epoch 1 of 3 (2 batches an epoch): the student's lr is g_lr, then cosine over 4 steps."""
    import math

    probe = LRProbe()
    _fit_compress(make_cfg, ("distill", "pruning"), "trainer.max_epochs=3", "distill.lr_schedule=cosine", callbacks=[probe])
    expected = [0.5 * 1e-3 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert probe.lrs[:2] == [1e-3, 1e-3]  # the dense epoch at the recipe's lr (sngan_ema)
    assert probe.lrs[2:] == pytest.approx(expected, rel=1e-12)


class StopAfter(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def test_resumed_cosine_distillation_equals_uninterrupted(make_cfg, tmp_path):
    """Killed after epoch 1 (the round at the end of epoch 0, one distilled epoch) and resumed: the student's lr
    plan comes back with the checkpoint, so weights and lr end as in the uninterrupted run."""
    from prunegen.run.rng import RNGStateCallback

    extra = ("trainer.max_epochs=4", "distill.lr_schedule=cosine")
    order = ("distill", "pruning")
    full, _, full_trainer = _fit_compress(make_cfg, order, *extra, callbacks=[RNGStateCallback()])
    saver = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_epochs=1, save_top_k=-1)
    _fit_compress(make_cfg, order, *extra, callbacks=[RNGStateCallback(), saver, StopAfter(1)])
    resumed, cb, trainer = _fit_compress(make_cfg, order, *extra, callbacks=[RNGStateCallback()],
                                         ckpt_path=tmp_path / "last.ckpt")
    assert cb.started_epoch == 1
    for module in ("generator", "ema"):
        a, b = getattr(full, module).state_dict(), getattr(resumed, module).state_dict()
        assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a), module
    assert trainer.optimizers[0].param_groups[0]["lr"] == full_trainer.optimizers[0].param_groups[0]["lr"]


@pytest.mark.parametrize("snapshot_epoch, teacher_epoch", [(None, 1), (0, 0)])
def test_snapshot_epoch_defaults_to_the_pruning_callbacks_first_round(make_cfg, snapshot_epoch, teacher_epoch):
    """distill.snapshot_epoch=null (the config's default) takes the first round of the pruning callback's
    schedule from the trainer's callbacks (no config reads pruning.start_epoch); an explicit epoch wins."""
    probe = TeacherEpochProbe()
    model, cb, trainer = _fit_compress(make_cfg, ("pruning", "distill"), "pruning.start_epoch=1", "pruning.end_epoch=1",
                                       f"distill.snapshot_epoch={'null' if snapshot_epoch is None else snapshot_epoch}",
                                       "model.ema_decay=0.0", callbacks=[probe])
    assert cb.teacher_epoch(trainer) == teacher_epoch and cb.started_epoch == teacher_epoch + 1
    teacher = cb.teacher.state_dict()
    assert all(torch.equal(teacher[k], v) for k, v in probe.dense[teacher_epoch].items())
    assert cb.record(None, model)["distill"]["teacher"] == f"snapshot after epoch {teacher_epoch}"


class TeacherEpochProbe(L.Callback):
    """Listed first: the generator at the end of every epoch, before any callback's epoch-end hook."""

    def __init__(self) -> None:
        self.dense: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_epoch_end(self, trainer, pl_module):
        state = unmasked_copy(pl_module.generator).state_dict()
        self.dense[trainer.current_epoch] = {k: v.clone() for k, v in state.items()}


def test_first_round_epoch_reads_the_pruning_schedule():
    """The schedule start of PruningCallback and Lightning's ModelPruning baseline; 0 without an epoch schedule
    (no pruning; IMP's geometric rounds), as `${oc.select:pruning.start_epoch,0}` gave before."""
    from prunegen.pruning import PruningCallback
    from prunegen.pruning.baselines import LightningModelPruning
    from prunegen.pruning.imp import IterativeMagnitudePruning

    assert first_round_epoch([]) == 0
    assert first_round_epoch([ModelCheckpoint(), PruningCallback(start_epoch=3, end_epoch=5)]) == 3
    assert first_round_epoch([LightningModelPruning(start_epoch=4, end_epoch=6)]) == 4
    assert first_round_epoch([IterativeMagnitudePruning(rounds=2, epochs_per_round=3)]) == 0
