"""A diffusion generator behind the generator protocol: a diffusers `UNet2DModel` that predicts the noise
eps(x_t, t), sampled with DDIM (eta 0: deterministic given the initial noise). The latent z is that noise,
x_T, flattened (`latent_dim` = C * H * W), so the metrics, grids and dense-vs-compact pictures draw
diffusion samples from fixed latents like any other generator's."""

from typing import Any

import torch
from torch import nn


class UNetGenerator(nn.Module):
    """eps-prediction UNet (`unet`, a diffusers UNet2DModel built from widths, layers per block, attention,
    GroupNorm groups) + DDIM sampling with `sampler_steps` steps over a `train_timesteps` linear schedule."""

    def __init__(self, image_size: int = 16, channels: int = 1, widths: list[int] | tuple[int, ...] = (32, 64),
                 layers_per_block: int = 1, attention: bool | list[int] = False, norm_num_groups: int = 8,
                 sampler_steps: int = 50, train_timesteps: int = 1000, num_classes: int = 0,
                 unet_kwargs: dict[str, Any] | None = None, pretrained: str | None = None) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        if num_classes:
            raise ValueError("model.generator.num_classes: the diffusion family is unconditional here (0)")
        if sampler_steps < 1 or sampler_steps > train_timesteps:
            raise ValueError(f"model.generator.sampler_steps must be in [1, {train_timesteps}], got {sampler_steps}")
        if any(w % norm_num_groups for w in widths):
            raise ValueError(f"model.generator.widths {list(widths)} must be multiples of norm_num_groups={norm_num_groups}")
        # attention: true = self-attention at the lowest resolution; a list = at those levels (0: the highest
        # resolution; DDPM's CIFAR-10 UNet has it at level 1, 16x16)
        levels = [len(widths) - 1] if attention is True else list(attention or [])
        if any(not 0 <= i < len(widths) for i in levels):
            raise ValueError(f"model.generator.attention: levels {levels} outside 0..{len(widths) - 1} (one per width)")
        down = ["AttnDownBlock2D" if i in levels else "DownBlock2D" for i in range(len(widths))]
        up = [b.replace("Down", "Up") for b in reversed(down)]
        self.unet = UNet2DModel(sample_size=image_size, in_channels=channels, out_channels=channels,
                                block_out_channels=tuple(widths), layers_per_block=layers_per_block,
                                down_block_types=tuple(down), up_block_types=tuple(up), norm_num_groups=norm_num_groups,
                                **dict(unet_kwargs or {}))
        if pretrained:
            self.load_pretrained(pretrained)
        self.image_size, self.channels, self.widths = image_size, channels, list(widths)
        self.layers_per_block, self.norm_num_groups = layers_per_block, norm_num_groups
        self.attention = attention if isinstance(attention, bool) else list(attention)
        self.unet_kwargs = dict(unet_kwargs or {})
        self.sampler_steps, self.train_timesteps = sampler_steps, train_timesteps
        self.latent_dim, self.num_classes = channels * image_size * image_size, 0

    def load_pretrained(self, source: str) -> None:
        """The weights of a diffusers UNet2DModel (a Hub id such as google/ddpm-cifar10-32, or a folder saved
        with `save_pretrained`) into this architecture, which must be the same (the config builds it, so a
        compact file rebuilds without the Hub)."""
        from diffusers import UNet2DModel

        try:
            other = UNet2DModel.from_pretrained(source)
        except (OSError, ValueError) as err:  # offline, no cache, or not a diffusers UNet folder
            raise ValueError(f"model.generator.pretrained={source}: cannot load a diffusers UNet2DModel from it ({err}); "
                             "give a folder written by save_pretrained, or a Hub id with internet or a filled Hub cache, "
                             "or pretrained=null to train from scratch") from err
        mine, theirs = dict(self.unet.config), dict(other.config)
        keys = ("block_out_channels", "layers_per_block", "down_block_types", "up_block_types", "norm_num_groups",
                "in_channels", "out_channels", "sample_size")
        differ = {k: theirs.get(k) for k in keys if _plain(mine.get(k)) != _plain(theirs.get(k))}
        if differ:
            raise ValueError(f"model.generator.pretrained={source}: its architecture differs from the config's in {differ}; "
                             "set model.generator (widths, layers_per_block, attention, norm_num_groups, data.image_size, "
                             "data.channels) to match it")
        self.unet.load_state_dict(other.state_dict())

    def scheduler(self, kind: str = "ddim"):
        """diffusers' DDPMScheduler (training: add_noise) or DDIMScheduler (sampling) of this schedule."""
        from diffusers import DDIMScheduler, DDPMScheduler

        cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
        return cls(num_train_timesteps=self.train_timesteps, beta_schedule="linear", clip_sample=True)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """The predicted noise of x_t at timestep(s) t."""
        return self.unet(x_t, t).sample

    # An iterative generator offers one step of its network: pruning traces it, MACs and the compact-vs-masked
    # check are measured on it, ONNX exports it.
    step = eps

    def step_inputs(self, n: int = 2, rng: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed batch (x_t, t) for `step`: x_t ~ N(0, I) from `rng` (zeros without one: tracing and MAC counting
        draw nothing from the global RNG, which a resumed run must find as it was), timesteps spread over the
        schedule; on the network's device."""
        device = next(self.parameters()).device
        shape = (n, self.channels, self.image_size, self.image_size)
        x_t = (torch.zeros(shape) if rng is None else torch.randn(shape, generator=rng)).to(device)
        return x_t, torch.linspace(0, self.train_timesteps - 1, n).long().to(device)

    def fixed_channels(self) -> list[str]:
        """Layers whose output channels structured pruning keeps: attention's query/key/value projections (their
        heads stay whole; the residual channels they read and write are pruned with the rest)."""
        return [n for n, _ in self.named_modules() if n.endswith((".to_q", ".to_k", ".to_v"))]

    def compacted(self) -> None:
        """After channels were physically removed: the channel counts diffusers' resampling blocks keep (and
        check in forward) follow their convolutions."""
        from diffusers.models.downsampling import Downsample2D
        from diffusers.models.upsampling import Upsample2D

        for m in self.modules():
            if isinstance(m, (Downsample2D, Upsample2D)) and getattr(m, "conv", None) is not None:
                m.channels, m.out_channels = m.conv.in_channels, m.conv.out_channels

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """DDIM from x_T = z (B, latent_dim) to images (B, C, S, S) in [-1, 1]."""
        sampler = self.scheduler("ddim")
        sampler.set_timesteps(self.sampler_steps)
        x = z.view(-1, self.channels, self.image_size, self.image_size)
        for t in sampler.timesteps:
            x = sampler.step(self.eps(x, t), t, x, eta=0.0).prev_sample
        return x.clamp(-1, 1)

    def spec(self) -> dict[str, Any]:
        return dict(image_size=self.image_size, channels=self.channels, widths=list(self.widths),
                    layers_per_block=self.layers_per_block, attention=self.attention, norm_num_groups=self.norm_num_groups,
                    sampler_steps=self.sampler_steps, train_timesteps=self.train_timesteps, unet_kwargs=self.unet_kwargs)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value
