"""What the file-backed datamodules share: the PIL -> [-1, 1] transform, loaders and capped `split_tensors`."""

import lightning as L
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torchvision import transforms

from prunegen.choices import check_choice
from prunegen.data.protocol import SPLITS
from prunegen.fileio import content_hash


class ConvertMode:
    """PIL image -> mode "L" (1 channel) or "RGB" (3 channels); a class, so DataLoader workers can pickle it."""

    def __init__(self, channels: int) -> None:
        check_choice("data.channels", channels, (1, 3))
        self.mode = "L" if channels == 1 else "RGB"

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.convert(self.mode)


def image_transform(image_size: int, channels: int) -> transforms.Compose:
    """PIL image -> (C, S, S) float tensor in [-1, 1]: shorter side resized to S, then center-cropped."""
    return transforms.Compose(
        [
            ConvertMode(channels),
            transforms.Resize(image_size, antialias=True),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),  # [0, 1]
            transforms.Normalize([0.5] * channels, [0.5] * channels),  # [-1, 1]
        ]
    )


def tensors_fingerprint(datamodule: L.LightningDataModule) -> str:
    """Hash of every split's images and labels as `split_tensors` gives them: what scoring caches are keyed by."""
    return content_hash([datamodule.split_tensors(split) for split in SPLITS])


def split_indices(n: int, fractions: tuple[float, float], seed: int) -> dict[str, torch.Tensor]:
    """A fixed permutation of range(n) cut into val / test / train (val and test first)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = int(n * fractions[0]), int(n * fractions[1])
    return {"val": perm[:n_val], "test": perm[n_val : n_val + n_test], "train": perm[n_val + n_test :]}


class ImageDataModule(L.LightningDataModule):
    """Base of every datamodule (an `ImageData`); subclasses build one Dataset per split, decoded on
    the fly or held in memory (a TensorDataset).

    `split_tensors(split)` (used for real statistics and the domain classifier) returns at most
    `eval_max_images` images of the split, a fixed random subset when the split is larger.
    """

    name = "images"
    channels = 3
    num_classes = 0

    def __init__(
        self,
        image_size: int = 32,
        batch_size: int = 64,
        num_workers: int = 0,
        eval_max_images: int = 10000,
        split_seed: int = 0,
    ) -> None:
        super().__init__()
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8, got {image_size}")
        if eval_max_images < 2:
            raise ValueError(f"data.eval_max_images must be >= 2, got {eval_max_images}")
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.eval_max_images, self.split_seed = eval_max_images, split_seed
        self._datasets: dict[str, Dataset] | None = None
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def build_splits(self) -> dict[str, Dataset]:
        """{split: Dataset of (image (C, S, S) in [-1, 1], label)} for train, val and test."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._datasets is None:
            self._datasets = self.build_splits()

    def dataset(self, split: str) -> Dataset:
        check_choice("split", split, SPLITS)
        self.setup()
        return self._datasets[split]

    def split_tensors(self, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, C, S, S) in [-1, 1], labels (N,)) of one split, N <= eval_max_images; cached."""
        if split not in self._tensors:
            ds = self.dataset(split)
            keep = None
            if len(ds) > self.eval_max_images:
                g = torch.Generator().manual_seed(self.split_seed + 1)
                keep = torch.randperm(len(ds), generator=g)[: self.eval_max_images]
            self._tensors[split] = self._stack(ds, keep)
        return self._tensors[split]

    def _stack(self, ds: Dataset, keep: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(ds, TensorDataset):  # in memory: no decoding (and no DataLoader drawing a seed)
            x, y = ds.tensors
            return (x, y) if keep is None else (x[keep], y[keep])
        ds = ds if keep is None else Subset(ds, keep.tolist())
        x = [torch.empty(0, self.channels, self.image_size, self.image_size)]
        y = [torch.empty(0, dtype=torch.long)]
        for xb, yb in DataLoader(ds, batch_size=256, num_workers=self.num_workers):
            x.append(xb)
            y.append(torch.as_tensor(yb, dtype=torch.long))
        return torch.cat(x), torch.cat(y)

    def fingerprint(self) -> str:
        """Identity of the images and labels served (the domain classifier and real statistics are cached
        under it): the split tensors' hash. Subclasses that can tell it without decoding override it."""
        return tensors_fingerprint(self)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(ds) >= self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)
    # No val/test loaders: nothing in a Lightning loop uses them (scores read the splits through
    # `split_tensors`), and Lightning warns about a val loader without a validation_step.

