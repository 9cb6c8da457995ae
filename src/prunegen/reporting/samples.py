"""Sample grids: the same latents every epoch, so grids show how one set of samples evolves."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torchvision.utils import save_image


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
        g = torch.Generator().manual_seed(self.seed)
        labels = torch.arange(self.num_images) % pl_module.num_classes if pl_module.num_classes else None
        return pl_module.sample(self.num_images, labels=labels, generator=g)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch
        last = epoch + 1 >= trainer.max_epochs
        if (epoch + 1) % self.every_n_epochs == 0 or last:
            images = self._sample(pl_module)
            save_grid(images, self.dirpath / f"epoch_{epoch:03d}.png")
            self.final_path = save_grid(images, self.dirpath.parent / "samples.png")
