"""Structured pruning of a diffusers UNet: channel groups through GroupNorm, skip concatenations, time-embedding
projections and (in one case) attention; masked == compact; MACs per denoising step fall; the compact file loads
with weights_only; Diff-Pruning's timestep rule stops where it says."""

import pytest
import torch
from torch import nn

from prunegen.deploy.compact import load_compact, save_compact
from prunegen.generator import count_macs, count_step_macs, max_abs_diff
from prunegen.models.diffusion import DDPM
from prunegen.models.ema import make_ema, update_ema
from prunegen.models.networks.unet import UNetGenerator
from prunegen.pruning.compact import compact
from prunegen.pruning.criteria import Magnitude
from prunegen.pruning.diff_pruning import collect
from prunegen.pruning.stats import GradientStatistics
from prunegen.pruning.structured import ChannelMasks, kept_channels


class Holder(nn.Module):
    def __init__(self, attention: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.generator = UNetGenerator(image_size=8, widths=[8, 16], norm_num_groups=4, attention=attention, sampler_steps=2)


def masked_unet(attention: bool = False, sparsity: float = 0.5) -> tuple[Holder, ChannelMasks]:
    model = Holder(attention)
    masks = ChannelMasks(["generator"], [], "layer")
    masks.setup(model)
    scores, alive = masks.scores(model, lambda module, path, name: Magnitude()(module, name, {}))
    masks.apply(model, masks.select(scores, alive, sparsity))
    return model, masks


@pytest.mark.parametrize("attention", [False, True])
def test_structured_unet_compact_equals_masked_and_loads_without_training_code(attention, tmp_path):
    model, masks = masked_unet(attention)
    groups = masks.groups["generator"]
    members = {m.path for g in groups for m in g.members}
    # skip concatenations make part of a consumer's channels a member (twice, where both halves are one group)
    assert any(m.index is not None for g in groups for m in g.members)
    assert "unet.time_embedding.linear_2" in members and "unet.up_blocks.0.resnets.0.time_emb_proj" in members
    if attention:  # heads stay whole; the residual channels attention reads and writes are pruned
        assert not any(g.root.endswith(("to_q", "to_k", "to_v")) for g in groups)
        assert "unet.mid_block.attentions.0.to_out.0" in members and "unet.mid_block.attentions.0.group_norm" in members
    for g in groups:  # half of every group, a multiple of the GroupNorm groups it passes
        kept = int(kept_channels(model.generator, g).sum())
        assert kept == g.size // 2 and kept % g.multiple == 0, g.root
    masked = model.generator.eval()
    small = compact(masked).eval()
    assert max_abs_diff(masked, small) < 1e-5  # one denoising step on fixed (x_t, t)
    z = torch.randn(3, masked.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (masked(z) - small(z)).abs().max() < 1e-4  # whole DDIM samples too
    norms = [m for m in small.modules() if isinstance(m, nn.GroupNorm)]
    assert all(m.num_groups == 4 and m.num_channels == m.weight.shape[0] for m in norms)  # group count kept
    assert small.unet.down_blocks[0].downsamplers[0].channels == 4  # diffusers' static attribute follows the conv
    dense_step, small_step = count_step_macs(masked), count_step_macs(small)
    assert 3 < dense_step / small_step < 4.2  # half the channels on both sides of most convs: ~4x
    assert count_macs(small) == 2 * small_step  # an image is sampler_steps steps
    path = save_compact(small, tmp_path / "unet.pt")
    back = load_compact(path)  # weights_only=True, rebuilt from its spec and the shapes in its state dict
    assert max_abs_diff(small, back) == 0


def test_masked_group_norm_normalises_alive_channels_like_the_compact_layer():
    model, _ = masked_unet()
    norm = model.generator.unet.down_blocks[1].resnets[0].norm2
    alive = norm.weight_mask.bool()
    x = torch.randn(2, 16, 4, 4)
    x[:, ~alive] = 0  # what the masked conv before it produces
    out = norm(x)
    reference = nn.functional.group_norm(x[:, alive], 4, norm.weight[alive], norm.bias[alive], norm.eps)
    assert torch.allclose(out[:, alive], reference, atol=1e-6) and not out[:, ~alive].any()


def test_ema_of_a_masked_unet_samples_what_the_unet_samples():
    model = Holder()
    ema = make_ema(model.generator)
    masks = ChannelMasks(["generator"], [], "layer")
    masks.setup(model)
    scores, alive = masks.scores(model, lambda module, path, name: Magnitude()(module, name, {}))
    masks.apply(model, masks.select(scores, alive, 0.5))
    update_ema(ema, model.generator, decay=0.0)  # the EMA is the masked UNet's weights: it must sample the same
    assert max_abs_diff(model.generator, ema) < 1e-6


def test_threshold_rounds_that_split_group_norm_groups_are_refused():
    model = Holder()
    masks = ChannelMasks(["generator"], [], "layer")
    masks.setup(model)
    keep = {f"generator.{g.root}": torch.arange(g.size) < 3 for g in masks.groups["generator"]}
    with pytest.raises(ValueError, match="not a multiple of 4"):
        masks.apply(model, keep)


def tiny_ddpm(timesteps: int = 40) -> DDPM:
    torch.manual_seed(0)
    unet = UNetGenerator(image_size=8, widths=[8, 16], norm_num_groups=4, sampler_steps=2, train_timesteps=timesteps)
    return DDPM(unet, optimizer=lambda params: torch.optim.Adam(params))


@pytest.mark.parametrize("threshold", [0.5, 1e-6])
def test_diff_pruning_sums_gradients_until_the_loss_falls_below_threshold_x_max(threshold):
    model = tiny_ddpm()
    images = torch.rand(8, 1, 8, 8) * 2 - 1
    images[:, :, 2:6, 2:6] = 1.0  # structure the UNet can learn a little of
    opt = torch.optim.Adam(model.generator.parameters(), lr=3e-3)
    for _ in range(60):  # a briefly trained UNet: its loss falls with t, as a trained DDPM's does
        t = torch.randint(0, 40, (8,))
        opt.zero_grad()
        model.denoising_loss(images, t).backward()
        opt.step()
    layers = {n: m for n, m in model.generator.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    stats = GradientStatistics()
    info = collect(model, images, stats, layers, threshold, seed=3)
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        losses = [model.denoising_loss(images, torch.full((8,), t), noise).item() for t in range(40)]
    running = [max(losses[: t + 1]) for t in range(40)]
    expected = next((t for t in range(40) if losses[t] < threshold * running[t]), 40)
    assert info["timesteps"] == expected and info["stopped"] == (expected < 40)
    if threshold == 0.5:
        assert 0 < expected < 40  # the rule stopped early
    else:
        assert expected == 40  # nothing falls below 1e-6 x max: every timestep is summed
    assert all(s["grad_w"].any() for s in stats.sums.values())
    assert all(p.grad is None for p in model.parameters())  # nothing left for the optimizer's next step


def test_compact_unet_exports_one_denoising_step_to_onnx(tmp_path):
    """ONNX holds one step (x_t, t -> eps) of the compact UNet; ONNX Runtime gives PyTorch's eps."""
    pytest.importorskip("onnxruntime")
    from prunegen.deploy.onnx import export_onnx, load_onnx, onnx_max_abs_diff

    model, _ = masked_unet()
    small = compact(model.generator.eval()).eval()
    path = export_onnx(small, tmp_path / "step.onnx")
    assert onnx_max_abs_diff(path, small, n=4) < 1e-4
    session = load_onnx(path, threads=1)
    x_t, t = session.example(3)
    assert session.step and tuple(session(x_t, t).shape) == x_t.shape
