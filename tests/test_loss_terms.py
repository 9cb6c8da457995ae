"""The public surface a model family offers for what its generator is trained with (models/objective.py)."""

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from test_zoo import VAE_TINY

from prunegen.models import losses
from prunegen.models.objective import GeneratorLossTerm


def _fit(cfg, model) -> L.Trainer:
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=instantiate(cfg.data))
    return trainer


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _mean_term(weight: float = 1.0) -> GeneratorLossTerm:
    def fn(z, labels, fake):
        loss = fake.mean() ** 2
        return loss, {"extra/mean_sq": loss}

    return GeneratorLossTerm("mean_sq", fn, weight)


def test_added_term_joins_the_generator_loss_and_g_loss_keeps_its_meaning(make_cfg):
    cfg = make_cfg()
    L.seed_everything(0)
    model = instantiate(cfg.model)
    model.add_generator_loss(_mean_term(weight=0.5))
    logged = _fit(cfg, model).callback_metrics
    assert {"train/d_loss", "train/g_loss", "train/g_total", "extra/mean_sq"} <= set(logged)
    expected = logged["train/g_loss"] + 0.5 * logged["extra/mean_sq"]
    assert logged["train/g_total"].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="already added"):
        model.add_generator_loss(_mean_term())


def test_gan_generator_trained_on_added_terms_alone_leaves_the_discriminator(make_cfg):
    cfg = make_cfg()
    L.seed_everything(0)
    model = instantiate(cfg.model)
    model.add_generator_loss(_mean_term())
    model.set_base_loss_weight(0.0)
    model.set_discriminator_policy("none")
    d_before, g_before = _state(model.discriminator), _state(model.generator)
    logged = _fit(cfg, model).callback_metrics
    assert all(torch.equal(v, d_before[k]) for k, v in model.discriminator.state_dict().items())
    assert any(not torch.equal(v, g_before[k]) for k, v in model.generator.state_dict().items())
    assert "train/g_loss" not in logged and "train/d_loss" not in logged  # no adversarial term, no D step
    assert logged["train/g_total"].item() == pytest.approx(logged["extra/mean_sq"].item())
    with pytest.raises(ValueError, match="discriminator policy"):
        model.set_discriminator_policy("sometimes")


def test_vae_decoder_trained_on_added_terms_alone_leaves_the_encoder(make_cfg):
    cfg = make_cfg(*VAE_TINY, "model=vae", tiny=False)
    L.seed_everything(0)
    model = instantiate(cfg.model)
    model.add_generator_loss(_mean_term())
    model.set_base_loss_weight(0.0)
    e_before, g_before = _state(model.encoder), _state(model.generator)
    logged = _fit(cfg, model).callback_metrics
    assert all(torch.equal(v, e_before[k]) for k, v in model.encoder.state_dict().items())
    assert any(not torch.equal(v, g_before[k]) for k, v in model.generator.state_dict().items())
    assert "train/elbo" not in logged and logged["train/total"].item() == pytest.approx(logged["extra/mean_sq"].item())
    with pytest.raises(ValueError, match="base loss weight"):
        model.set_base_loss_weight(-1.0)


class ResetAtEpochEnd(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.reset_generator_optimizer(lr=0.01)
        self.moments_left = len(trainer.optimizers[0].state)


def test_reset_generator_optimizer_drops_moments_and_sets_the_lr(make_cfg):
    cfg = make_cfg()
    L.seed_everything(0)
    model, probe = instantiate(cfg.model), ResetAtEpochEnd()
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False, callbacks=[probe],
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=instantiate(cfg.data))
    assert probe.moments_left == 0 and len(trainer.optimizers[1].state) > 0  # D's moments are kept
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.01


def test_r1_penalty_of_linear_critic():
    """critic(x) = <w, x>: the gradient is w for every image, so R1 = 0.5 * ||w||^2."""
    w = torch.randn(1, 3, 4, 4)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    r1 = losses.r1_penalty(critic, torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4))
    assert r1.item() == pytest.approx(0.5 * w.pow(2).sum().item(), rel=1e-5)


@pytest.mark.parametrize("loss", ["nonsat_r1", "hinge_r1"])
def test_gan_with_r1_regularised_discriminator_trains(make_cfg, loss):
    """A loss with a D regulariser is one `GANLoss` entry in losses.py, chosen by model.loss."""
    assert losses.LOSSES[loss].penalty is losses.r1_penalty
    cfg = make_cfg(f"model.loss={loss}", "+model.gp_weight=1.0")
    L.seed_everything(0)
    model = instantiate(cfg.model)
    logged = _fit(cfg, model).callback_metrics
    assert torch.isfinite(logged["train/d_loss"]) and torch.isfinite(logged["train/g_loss"])
    with pytest.raises(InstantiationException, match="model.loss must be one of"):
        instantiate(make_cfg("model.loss=r2").model)
