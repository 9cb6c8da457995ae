"""Sample grids: the same latents every epoch, so grids show how one set of samples evolves."""

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torchvision.utils import save_image

from prunegen.generator import sample_generator
from prunegen.run.loggers import epoch_end_step, image_grid, log_image


def save_grid(images: torch.Tensor, path: str | Path) -> Path:
    """Save images in [-1, 1] as one PNG grid (8 per row)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.detach().cpu().float(), path, nrow=8, normalize=True, value_range=(-1, 1))
    return path


class SampleGridCallback(Callback):
    """Writes `dirpath/epoch_XXX.png` every n epochs and `dirpath/../samples.png` after the last one."""

    def __init__(self, dirpath: str, num_images: int = 64, every_n_epochs: int = 1, seed: int = 1234) -> None:
        self.dirpath, self.num_images, self.every_n_epochs, self.seed = Path(dirpath), num_images, every_n_epochs, seed
        self.final_path: Path | None = None

    def _sample(self, pl_module: L.LightningModule) -> torch.Tensor:
        # labels=None: a conditional model cycles over its classes (0, 1, ..., 9, 0, 1, ...)
        return pl_module.sample(self.num_images, generator=torch.Generator().manual_seed(self.seed))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch
        last = epoch + 1 >= trainer.max_epochs
        if (epoch + 1) % self.every_n_epochs == 0 or last:
            images = self._sample(pl_module)
            save_grid(images, self.dirpath / f"epoch_{epoch:03d}.png")
            self.final_path = save_grid(images, self.dirpath.parent / "samples.png")
            log_image(trainer, "samples", image_grid(images), epoch_end_step(trainer))  # TensorBoard / W&B, if any

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """The final grid for metrics.json (written in the workers under ddp_spawn: read from disk)."""
        final = self.dirpath.parent / "samples.png"
        return {"samples": str(final) if final.exists() else None}


def describe(name: str, macs: int | None = None, fid: float | None = None) -> str:
    """'compact · 0.21 M MACs · FID 3.4' (parts that are None are left out)."""
    parts = [name] + ([f"{macs / 1e6:.2f} M MACs"] if macs is not None else []) + ([f"FID {fid:.2f}"] if fid is not None else [])
    return " · ".join(parts)


def dense_vs_compact_grid(dense: nn.Module, compact: nn.Module, path: str | Path, labels: tuple[str, str] = ("dense", "compact"),
                          num_images: int = 32, seed: int = 1234) -> Path:
    """Two sample grids side by side from the same latents (and class labels), titled with `labels`
    (see `describe`): what compression changed, image by image. Writes a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = [image_grid(sample_generator(g, num_images, generator=torch.Generator().manual_seed(seed)), nrow=8) for g in (dense, compact)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 10 * grids[0].shape[1] / grids[0].shape[2] / 2 + 0.6))
    for ax, grid, title in zip(axes, grids, labels):
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=11)
        ax.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
