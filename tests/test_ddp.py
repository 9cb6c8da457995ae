"""Under DDP every rank computes the same masks: gradient statistics are all-reduced before scoring."""

import json

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from prunegen.masks import prunable_layers


class MaskChecksums(L.Callback):
    """Gathers every rank's mask checksums and the rank-local gradient sums; rank 0 writes them."""

    def __init__(self, path):
        self.path = path

    def on_train_end(self, trainer, pl_module):
        masks = torch.stack([m.weight_mask.sum() + (m.weight_mask * torch.arange(m.weight_mask.numel()).view_as(m.weight_mask)).sum()
                             for m in prunable_layers(pl_module, ["generator"]).values()])
        gathered = trainer.strategy.all_gather(masks)
        if trainer.is_global_zero:
            self.path.write_text(json.dumps({"masks": gathered.tolist(), "world": trainer.world_size}))


@pytest.mark.slow  # end-to-end, ~1 min here; `make test` runs it, `-m 'not slow'` skips it
def test_ddp_spawn_ranks_agree_on_masks(make_cfg, tmp_path):
    cfg = make_cfg("pruning=unstructured", "pruning.criterion=gradient", "pruning.start_epoch=0", "pruning.end_epoch=0",
                   "pruning.final_sparsity=0.5")
    L.seed_everything(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    out = tmp_path / "checksums.json"
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn_find_unused_parameters_true", max_epochs=1, limit_train_batches=2,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0,
                        callbacks=[instantiate(cfg.pruning), MaskChecksums(out)])
    trainer.fit(model, datamodule=dm)
    result = json.loads(out.read_text())
    assert result["world"] == 2
    rank0, rank1 = result["masks"]
    assert rank0 == rank1  # each rank saw different batches, yet scored the same summed gradients


@pytest.mark.slow  # end-to-end, ~1 min here; `make test` runs it, `-m 'not slow'` skips it
def test_train_under_ddp_spawn_records_masks_and_scores(make_cfg, tmp_path):
    from prunegen.train import train

    cfg = make_cfg("trainer=ddp_spawn", "pruning=structured", "pruning.start_epoch=0", "pruning.end_epoch=0",
                   "pruning.final_sparsity=0.5", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                   "trainer.enable_progress_bar=false", "logger=none")
    record, objects = train(cfg)
    assert record["pruning"]["achieved_sparsity"] == 0.5  # the workers' masks, reloaded from last.ckpt
    assert record["generator"]["macs_effective"] < record["generator"]["macs"] / 3
    assert record["metrics"]["fid"] > 0 and record["metrics"]["num_samples"] == 64
