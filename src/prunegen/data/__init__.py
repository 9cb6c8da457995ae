from prunegen.data.digits import DigitsDataModule
from prunegen.data.image_folder import ImageFolderDataModule
from prunegen.data.protocol import SPLITS, ImageData
from prunegen.data.torchvision_sets import (
    CelebADataModule,
    CIFAR10DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
)

__all__ = [
    "CelebADataModule",
    "CIFAR10DataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageData",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "SPLITS",
]
