"""Diff-Pruning's CIFAR-10 configuration (experiment=paper/diff_pruning_cifar10): google/ddpm-cifar10-32's
architecture built from the config, its weights loaded from a diffusers folder (random ones written here, as
the Hub's would be), pruned, trained two steps, sampled with two DDIM steps, exported."""

import pytest
import torch
from test_imp import _write_cifar

from prunegen.generator import count_step_macs
from prunegen.models.networks.unet import UNetGenerator
from prunegen.train import train

PAPER_UNET = dict(image_size=32, channels=3, widths=[128, 256, 256, 256], layers_per_block=2, attention=[1],
                  norm_num_groups=32, unet_kwargs=dict(downsample_padding=0, flip_sin_to_cos=False, freq_shift=1,
                                                       norm_eps=1e-6))


def test_pretrained_unet_weights_load_and_other_architectures_are_refused(tmp_path):
    torch.manual_seed(0)
    source = UNetGenerator(image_size=8, widths=[8, 16], norm_num_groups=4, attention=[0])
    source.unet.save_pretrained(tmp_path / "unet")  # what UNet2DModel.from_pretrained reads (a Hub id works alike)
    same = UNetGenerator(image_size=8, widths=[8, 16], norm_num_groups=4, attention=[0], pretrained=str(tmp_path / "unet"))
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), same.state_dict().values()))
    assert "pretrained" not in same.spec()  # a compact file rebuilds from the config, without the Hub
    with pytest.raises(ValueError, match=r"model.generator.pretrained=.*block_out_channels.*set model.generator"):
        UNetGenerator(image_size=8, widths=[8, 8], norm_num_groups=4, attention=[0], pretrained=str(tmp_path / "unet"))
    with pytest.raises(ValueError, match="model.generator.attention: levels"):
        UNetGenerator(image_size=8, widths=[8, 16], norm_num_groups=4, attention=[2])


@pytest.mark.slow
def test_diff_pruning_cifar10_paper_experiment_on_random_weights(make_cfg, tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)  # fake files, not torchvision's md5s
    _write_cifar(tmp_path / "data")
    torch.manual_seed(0)
    random_unet = UNetGenerator(**PAPER_UNET)
    assert sum(p.numel() for p in random_unet.parameters()) == 35_746_307  # google/ddpm-cifar10-32's count
    assert 6.0e9 < count_step_macs(random_unet) < 6.1e9  # the paper's 6.1G MACs per step
    random_unet.unet.save_pretrained(tmp_path / "ddpm-cifar10-32")
    cfg = make_cfg("experiment=paper/diff_pruning_cifar10", f"data.root={tmp_path / 'data'}", "trainer=cpu",
                   f"model.generator.pretrained={tmp_path / 'ddpm-cifar10-32'}", "model.generator.sampler_steps=2",
                   "pruning.criterion=magnitude",  # diff_pruning's rule would walk all 1,000 timesteps of random weights
                   "trainer.max_epochs=2", "trainer.limit_train_batches=2", "data.batch_size=2", "logger=none",
                   "metrics.extractor=classifier", "metrics.min_extractor_accuracy=0", "metrics.min_extractor_images=0",
                   "metrics.num_samples=10", "metrics.batch_size=10", "data.eval_max_images=40",
                   "export.batch_size=1", "export.repeats=1", "trainer.enable_progress_bar=false",
                   "callbacks.sample_grid=null", tiny=False)
    g = cfg.model.generator
    assert (list(g.widths), g.layers_per_block, list(g.attention), g.norm_num_groups) == ([128, 256, 256, 256], 2, [1], 32)
    assert cfg.data.batch_size == 2 and cfg.model.optimizer.lr == 2e-4 and cfg.model.ema_decay == 0.9999
    record, objects = train(cfg)
    assert record["status"] == "completed", record.get("error")
    assert record["generator"]["params_total"] == 35_746_307
    (round_,) = record["pruning"]["rounds"]
    assert round_["achieved_sparsity"] == pytest.approx(0.25, abs=0.01)  # 30% rounded to whole GroupNorm multiples
    export = record["export"]
    assert export["max_abs_diff"] <= 1e-4 and export["compact"]["sampler_steps"] == 2
    assert 17e6 < export["compact"]["params"] < 22e6  # the paper's 19.8M
    assert 1.6 < export["dense"]["macs_per_step"] / export["compact"]["macs_per_step"] < 2.0  # the paper's 6.1G -> 3.4G
