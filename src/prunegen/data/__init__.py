"""The datamodules (`prunegen.data.DigitsDataModule`, ...), imported on first use: `prunegen.data.checks`
runs on the config before torch is loaded."""

from typing import Any

_HOMES = {
    "DigitsDataModule": "prunegen.data.digits",
    "ImageFolderDataModule": "prunegen.data.image_folder",
    "SPLITS": "prunegen.data.protocol",
    "ImageData": "prunegen.data.protocol",
    "CelebADataModule": "prunegen.data.torchvision_sets",
    "CIFAR10DataModule": "prunegen.data.torchvision_sets",
    "FashionMNISTDataModule": "prunegen.data.torchvision_sets",
    "MNISTDataModule": "prunegen.data.torchvision_sets",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'prunegen.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
