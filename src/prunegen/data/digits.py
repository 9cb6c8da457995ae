"""scikit-learn's embedded digits (1797 8x8 images): the default dataset, no download."""

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

SPLITS = ("train", "val", "test")


def load_digits_tensors(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (N, 1, S, S) floats in [-1, 1] and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = (x * 2 - 1).clamp(-1, 1)
    return x, torch.tensor(digits.target, dtype=torch.long)


class DigitsDataModule(L.LightningDataModule):
    """Digits scaled to [-1, 1], resized to `image_size`, split by a fixed seed (not the run's)."""

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
    ) -> None:
        super().__init__()
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8, got {image_size}")
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3 (grey digits repeated), got {channels}")
        if num_classes not in (None, 10):
            raise ValueError(f"data.num_classes is 10 for digits, got {num_classes}")
        self.channels = channels
        if not 0 <= val_fraction + test_fraction < 1:
            raise ValueError("data.val_fraction + data.test_fraction must be in [0, 1)")
        self.image_size = image_size
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.num_workers = num_workers
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        x, y = load_digits_tensors(self.image_size)
        x = x.repeat(1, self.channels, 1, 1)  # (N, C, S, S)
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        n_val, n_test = int(len(x) * self.val_fraction), int(len(x) * self.test_fraction)
        idx = {"val": perm[:n_val], "test": perm[n_val : n_val + n_test], "train": perm[n_val + n_test :]}
        self._splits = {s: (x[i], y[i]) for s, i in idx.items()}

    def split_tensors(self, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) of one split; images (N, C, S, S) in [-1, 1]."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.setup()
        return self._splits[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        x, y = self.split_tensors(split)
        return DataLoader(
            TensorDataset(x, y),
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
