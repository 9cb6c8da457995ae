"""Any folder of images: resized and center-cropped to `image_size`; labels from sub-folders when present."""

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from prunegen.data.base import ImageDataModule, image_transform, split_indices
from prunegen.data.checks import EXTENSIONS, check_class_sizes, class_counts, scan_folder  # noqa: F401 (EXTENSIONS: public)
from prunegen.fileio import content_hash, file_list_hash


def open_image(path: Path) -> Image.Image:
    """The decoded image; an unreadable file raises an OSError naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except Exception as err:
        raise OSError(f"cannot read image {path}: {type(err).__name__}: {err}") from err


class ImageFiles(Dataset):
    """(image (C, S, S) in [-1, 1], label) per file."""

    def __init__(self, files: list[Path], labels: list[int], transform) -> None:
        self.files, self.labels, self.transform = files, labels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(open_image(self.files[i])), self.labels[i]


class ImageFolderDataModule(ImageDataModule):
    """Images under `root`; `num_classes` is the number of label sub-folders (0: images directly in root).

    `data.num_classes` null: found from the folder; a number: checked against it (conditional models
    read `${data.num_classes}`, so set it for them). With `verify`, `setup` decodes every file once,
    so a corrupt image fails before training, naming the file.
    """

    name = "image_folder"

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 64,
        num_classes: int | None = None,
        val_fraction: float = 0.0,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        verify: bool = True,
        eval_max_images: int = 10000,
        num_workers: int = 0,
        allow_small_classes: bool = False,
    ) -> None:
        super().__init__(image_size, batch_size, num_workers, eval_max_images, split_seed)
        if not 0 <= val_fraction + test_fraction < 1:
            raise ValueError("data.val_fraction + data.test_fraction must be in [0, 1)")
        self.root, self.channels, self.verify = Path(root), channels, verify
        self.allow_small_classes = allow_small_classes
        self.fractions = (val_fraction, test_fraction)
        self.expected_classes = num_classes
        self.transform = image_transform(image_size, channels)
        self.classes: list[str] | None = None
        self._scan: tuple[list[Path], list[int]] | None = None

    def _scanned(self) -> tuple[list[Path], list[int]]:
        if self._scan is None:
            files, labels, self.classes = scan_folder(self.root)
            if self.expected_classes is not None and self.expected_classes != len(self.classes):
                raise ValueError(
                    f"data.num_classes={self.expected_classes} but {self.root} has {len(self.classes)} "
                    f"label sub-folders {self.classes}"
                )
            check_class_sizes(class_counts(labels, self.classes), sum(self.fractions), self.allow_small_classes, f"data.root {self.root}")
            self._scan = files, labels
        return self._scan

    @property
    def num_classes(self) -> int:
        self._scanned()
        return len(self.classes)

    def fingerprint(self) -> str:
        """The files (names under root, sizes, modification times), their labels and how they become
        tensors (size, channels, splits, subset), without decoding an image."""
        files, labels = self._scanned()
        settings = (self.image_size, self.channels, self.fractions, self.split_seed, self.eval_max_images)
        return content_hash(file_list_hash(files, self.root), labels, settings)

    def build_splits(self) -> dict[str, Dataset]:
        files, labels = self._scanned()
        if self.verify:
            for path in files:
                open_image(path)
        dataset = ImageFiles(files, labels, self.transform)
        idx = split_indices(len(files), self.fractions, self.split_seed)
        return {split: Subset(dataset, i.tolist()) for split, i in idx.items()}
