"""MNIST, Fashion-MNIST, CIFAR-10 and CelebA through torchvision; downloaded only with `download=true`."""

from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset
from torchvision import datasets

from prunegen.data.base import ImageDataModule, image_transform, split_indices


class Unlabelled(Dataset):
    """(image, 0) for datasets used without classes (CelebA's targets are attributes, not classes)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.dataset[i][0], 0


class TorchvisionDataModule(ImageDataModule):
    """A torchvision dataset under `root`, resized to `image_size`, in [-1, 1].

    Nothing is fetched unless `download=True`; without the files, `prepare_data` / `setup` raise a
    FileNotFoundError naming the folder torchvision reads them from. Train / test are the dataset's
    own splits; `val_fraction` of train (fixed by `split_seed`) is held out as val.
    """

    folder = ""  # the sub-folder of `root` that torchvision reads
    native_channels = 1

    def __init__(
        self,
        root: str = "data",
        download: bool = False,
        image_size: int = 32,
        batch_size: int = 64,
        channels: int | None = None,
        num_classes: int | None = None,
        val_fraction: float = 0.0,
        split_seed: int = 0,
        eval_max_images: int = 10000,
        num_workers: int = 0,
    ) -> None:
        super().__init__(image_size, batch_size, num_workers, eval_max_images, split_seed)
        if num_classes is not None and num_classes != type(self).num_classes:
            raise ValueError(f"data.num_classes is {type(self).num_classes} for {self.name}, got {num_classes}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        self.root, self.download, self.val_fraction = Path(root), download, val_fraction
        self.channels = channels if channels is not None else self.native_channels
        self.transform = image_transform(image_size, self.channels)

    def load(self, split: str, download: bool) -> Dataset:
        """The torchvision dataset of one native split ("train" or "test")."""
        raise NotImplementedError

    def _load_or_explain(self, split: str, download: bool = False) -> Dataset:
        try:
            return self.load(split, download)
        except RuntimeError as err:  # torchvision: "Dataset not found ... use download=True"
            raise FileNotFoundError(
                f"{self.name}: no dataset files in {self.root / self.folder} (torchvision said: {err}). "
                f"Put the files there (torchvision's layout), or run once with data.download=true "
                f"on a machine with internet (data.root={self.root})"
            ) from None

    def prepare_data(self) -> None:
        for split in ("train", "test"):
            self._load_or_explain(split, download=self.download)

    def build_splits(self) -> dict[str, Dataset]:
        train = self._load_or_explain("train")
        idx = split_indices(len(train), (self.val_fraction, 0.0), self.split_seed)
        return {
            "train": Subset(train, idx["train"].tolist()),
            "val": Subset(train, idx["val"].tolist()),
            "test": self._load_or_explain("test"),
        }


class MNISTDataModule(TorchvisionDataModule):
    name, folder, num_classes, native_channels = "mnist", "MNIST", 10, 1

    def load(self, split: str, download: bool) -> Dataset:
        return datasets.MNIST(self.root, train=split == "train", transform=self.transform, download=download)


class FashionMNISTDataModule(TorchvisionDataModule):
    name, folder, num_classes, native_channels = "fashion_mnist", "FashionMNIST", 10, 1

    def load(self, split: str, download: bool) -> Dataset:
        return datasets.FashionMNIST(self.root, train=split == "train", transform=self.transform, download=download)


class CIFAR10DataModule(TorchvisionDataModule):
    name, folder, num_classes, native_channels = "cifar10", "cifar-10-batches-py", 10, 3

    def load(self, split: str, download: bool) -> Dataset:
        return datasets.CIFAR10(self.root, train=split == "train", transform=self.transform, download=download)


class CelebADataModule(TorchvisionDataModule):
    """CelebA's aligned faces (unlabelled); its own train / valid / test partition."""

    name, folder, num_classes, native_channels = "celeba", "celeba", 0, 3

    def load(self, split: str, download: bool) -> Dataset:
        split = {"val": "valid"}.get(split, split)
        ds = datasets.CelebA(self.root, split=split, target_type=[], transform=self.transform, download=download)
        return Unlabelled(ds)

    def build_splits(self) -> dict[str, Dataset]:
        return {split: self._load_or_explain(split) for split in ("train", "val", "test")}
