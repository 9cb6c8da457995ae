"""scikit-learn's embedded digits (1797 8x8 images): the default dataset, no download."""

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from prunegen.choices import check_choice
from prunegen.data.base import ImageDataModule, split_indices


def load_digits_tensors(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (N, 1, S, S) floats in [-1, 1] and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = (x * 2 - 1).clamp(-1, 1)
    return x, torch.tensor(digits.target, dtype=torch.long)


class DigitsDataModule(ImageDataModule):
    """Digits scaled to [-1, 1], resized to `image_size`, held in memory, split by a fixed seed (not the run's)."""

    name = "digits"
    channels = 1
    num_classes = 10

    def __init__(
        self,
        image_size: int = 32,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        channels: int = 1,
        num_classes: int | None = 10,
        eval_max_images: int = 10000,
    ) -> None:
        super().__init__(image_size, batch_size, num_workers, eval_max_images, split_seed)
        check_choice("data.channels", channels, (1, 3), extra="(grey digits repeated)")
        if num_classes not in (None, 10):
            raise ValueError(f"data.num_classes is 10 for digits, got {num_classes}")
        if not 0 <= val_fraction + test_fraction < 1:
            raise ValueError(f"data.val_fraction + data.test_fraction must be in [0, 1), got {val_fraction} + {test_fraction}")
        self.channels, self.fractions = channels, (val_fraction, test_fraction)

    def build_splits(self) -> dict[str, Dataset]:
        x, y = load_digits_tensors(self.image_size)
        x = x.repeat(1, self.channels, 1, 1)  # (N, C, S, S)
        idx = split_indices(len(x), self.fractions, self.split_seed)
        return {s: TensorDataset(x[i], y[i]) for s, i in idx.items()}
