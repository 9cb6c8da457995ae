"""The surface every model family shares (GAN, VAE, ...): `generator`, `latent_dim`, `num_classes`,
`sample(n, labels)`, the EMA hooks the pruning and deployment stages call, and when a training step's
`self.log` calls are worth making. Metrics, pruning and export use only this and the generator protocol.
"""

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from prunegen.generator import Sampling


def plain(value: Any) -> Any:
    """`value` with every omegaconf container turned into Python lists and dicts."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


class GenerativeFamily(Sampling):
    """Mixin of the LightningModules: the sampling surface (`prunegen.generator.Sampling`) and the EMA hooks.

    A family with an EMA of its generator overrides `_sampler` (what is sampled), `use_ema_weights` (copy
    the average into `generator` before export) and `reset_ema` (the average restarts from the generator).
    """

    family: str = ""

    def use_ema_weights(self) -> None:
        """Make `generator` hold the weights that are sampled and scored (nothing to do without an EMA)."""

    def reset_ema(self) -> None:
        """Restart the EMA (when there is one) from the generator's current effective weights."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Hyperparameters as plain Python: a list from a Hydra config (`model.diffaugment=[translation]`) is
        an omegaconf ListConfig, which torch.load(weights_only=True) refuses, so the checkpoint could be
        neither resumed nor scored."""
        if "hyper_parameters" in checkpoint:
            checkpoint["hyper_parameters"] = plain(dict(checkpoint["hyper_parameters"]))


def should_log(module: Any) -> bool:
    """Whether a training step's `self.log` calls reach anything: the steps the loggers write
    (every `trainer.log_every_n_steps`, Lightning's own rule) and the last batch of an epoch (so
    `trainer.callback_metrics` ends every epoch with that epoch's last values). Lightning's `self.log`
    costs ~1.7 ms a call here (measured), ~7% of a digits DCGAN step at three calls per step; values
    logged on other steps were only ever shown in the progress bar, which now refreshes at log steps."""
    trainer = module._trainer
    if trainer is None:
        return True
    connector = getattr(trainer, "_logger_connector", None)
    return trainer.is_last_batch or connector is None or connector.should_update_logs
