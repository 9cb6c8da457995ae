"""TensorBoard and W&B: what a run logs can be read back with the tools' own readers, offline."""

import csv
import re

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch import nn

from prunegen.run.loggers import override_params, wandb_logger, wandb_run_id
from prunegen.train import train


@pytest.mark.slow
def test_tensorboard_beside_csv_has_scalars_samples_histograms_and_hparams(make_cfg, tmp_path):
    cfg = make_cfg("logger=[csv,tensorboard]", "pruning=unstructured", "pruning.start_epoch=0", "pruning.end_epoch=1",
                   "trainer.max_epochs=2", "callbacks.sample_grid.every_n_epochs=1", "callbacks.sample_grid.num_images=16",
                   "metrics.every_n_epochs=1")
    record, _ = train(cfg)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0, "histograms": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        csv_scalars = set(next(csv.reader(f))) - {"epoch", "step"}
    assert {"val/fid", "prune/sparsity"} <= csv_scalars <= set(tags["scalars"])  # every CSV column, in TensorBoard too
    assert events.Scalars("val/fid")[-1].value == pytest.approx(record["metrics"]["fid"], rel=1e-5)
    images = events.Images("samples")
    assert len(images) == 2 and images[0].encoded_image_string.startswith(b"\x89PNG")  # one per grid epoch
    fid_steps = [e.step for e in events.Scalars("val/fid")]
    assert [i.step for i in images] == fid_steps  # at the steps of the scalars of the same epoch
    histograms = [t for t in tags["histograms"] if t.startswith("prune/weights/generator.")]
    steps = [h.step for h in events.Histograms(histograms[0])]
    assert len(steps) == 2 and steps[0] == 0 < steps[1]  # before training, after the pruning round
    assert events.Scalars("hp/fid")[-1].value == pytest.approx(record["metrics"]["fid"], rel=1e-5)
    experiment = HParamsPluginData.FromString(events.summary_metadata["_hparams_/experiment"].plugin_data.content)
    assert [m.name.tag for m in experiment.experiment.metric_infos] == ["hp/fid"]
    session = HParamsPluginData.FromString(events.summary_metadata["_hparams_/session_start_info"].plugin_data.content)
    assert session.session_start_info.hparams["name"].string_value == "dcgan"  # the model's hyperparameters
    assert record["loggers"]["tensorboard"] == str(tmp_path / "run" / "tensorboard")


def test_overrides_become_hparams():
    assert override_params(["pruning.final_sparsity=0.75", "seed=2", "+logger=[csv,tensorboard]", "~debug"]) == {
        "pruning.final_sparsity": 0.75, "seed": 2, "logger": "[csv,tensorboard]"}


def test_wandb_run_id_is_the_run_folders():
    assert wandb_run_id("/sweep/3", 0) == wandb_run_id("/sweep/3", 0)  # a requeued job, the same folder
    assert len({wandb_run_id("/sweep/3", 0), wandb_run_id("/sweep/4", 0), wandb_run_id("/sweep/3", 1)}) == 3


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=4)


def _fit(run_dir, max_epochs, ckpt_path=None):
    import wandb

    logger = wandb_logger(str(run_dir), seed=0, tags=["model=dcgan"], group="compress_digits")
    trainer = L.Trainer(max_epochs=max_epochs, logger=logger, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True)])
    trainer.fit(_Tiny(), ckpt_path=ckpt_path)
    run_id, group = logger.experiment.id, logger.experiment.group
    wandb.finish()
    return run_id, group


def test_wandb_offline_run_resumed_from_its_checkpoint_keeps_its_id(tmp_path, monkeypatch):
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the logger's own default: offline
    run_dir = tmp_path / "sweep" / "0"
    first, group = _fit(run_dir, 1)
    resumed, _ = _fit(run_dir, 2, ckpt_path=run_dir / "checkpoints" / "last.ckpt")
    assert first == resumed == wandb_run_id(run_dir, 0) and group == "compress_digits"
    offline = sorted(p.name for p in (run_dir / "wandb").glob("offline-run-*"))
    # `wandb sync` merges them into one run; two attempts started within the same second get wandb's `-1` suffix
    assert len(offline) == 2 and all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{first}(-\d+)?", n) for n in offline)


def test_wandb_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="logger.wandb.mode.*'offlin'"):
        wandb_logger(str(tmp_path), seed=0, mode="offlin")


def test_dense_vs_compact_grid_draws_both_from_the_same_latents(tmp_path, monkeypatch):
    from PIL import Image

    import prunegen.run.samples as samples
    from prunegen.models.networks.dcgan import DCGANGenerator

    seen = []
    original = samples.sample_generator
    def spy(net, n, generator):
        seen.append(torch.randn(n, 16, generator=generator))
        return original(net, n, generator=generator)

    monkeypatch.setattr(samples, "sample_generator", spy)
    dense = DCGANGenerator(latent_dim=16, ngf=8, image_size=16, num_classes=10)
    compact = DCGANGenerator(latent_dim=16, image_size=16, num_classes=10, widths=[4, 2])
    labels = (samples.describe("dense", 4_456_448, 0.985), samples.describe("compact", 327_680, None))
    assert labels == ("dense · 4.46 M MACs · FID 0.98", "compact · 0.33 M MACs")
    path = samples.dense_vs_compact_grid(dense, compact, tmp_path / "dense_vs_compact.png", labels, num_images=16)
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])
    width, height = Image.open(path).size
    assert width > height > 0
