"""Where images to score come from: a datamodule's split or a folder of image files."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from prunegen.data.protocol import ImageData
from prunegen.fileio import content_hash, file_list_hash

EXTENSIONS = (".png", ".jpg", ".jpeg")  # torch-fidelity's defaults


@dataclass
class ImageSource:
    """A fixed set of images, streamed in float batches (N, C, H, W) in [-1, 1]."""

    name: str  # dataset name, or the folder's name (for cache file names)
    split: str
    image_size: int | None  # None when the images' own sizes are used
    count: int
    batches: Callable[[int], Iterator[Tensor]]  # batch_size -> batches
    content: str  # what the images are: the dataset's fingerprint (+ split, limit), or the file list's hash


def check_data(datamodule: object) -> ImageData:
    """`datamodule` if it serves what scoring reads (`ImageData`), else a TypeError saying what is missing."""
    if not isinstance(datamodule, ImageData):
        raise TypeError(
            f"scoring needs a datamodule with name, image_size, channels, num_classes, split_tensors(split) and "
            f"fingerprint() (prunegen.data.ImageData); got {type(datamodule).__name__}"
        )
    return datamodule


def from_datamodule(datamodule: ImageData, split: str = "train", limit: int | None = None) -> ImageSource:
    """The first `limit` images (all if None) of `datamodule.split_tensors(split)`."""
    images = check_data(datamodule).split_tensors(split)[0]
    images = images[:limit] if limit is not None else images
    content = content_hash(datamodule.fingerprint(), split, len(images))  # no second pass over the pixels
    return from_tensor(images, datamodule.name, split, content)


def from_tensor(images: Tensor, name: str = "tensor", split: str = "tensor", content: str | None = None) -> ImageSource:
    """Images already in memory (N, C, H, W) in [-1, 1]; `content` defaults to their hash."""

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(images), batch_size):
            yield images[i : i + batch_size]

    content = content or content_hash(images)
    return ImageSource(name, split, images.shape[-1], len(images), batches, content)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in `folder` (like torch-fidelity: not recursive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"no {'/'.join(EXTENSIONS)} images in {folder}")
    return files


def load_image(path: Path, channels: int = 3) -> Tensor:
    """One file as uint8 (C, H, W); 3 channels the way torch-fidelity reads it (PIL's convert("RGB"))."""
    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB" if channels == 3 else "L"))
    t = torch.from_numpy(array.copy())
    return t.permute(2, 0, 1) if t.dim() == 3 else t.unsqueeze(0)


def from_folder(folder: str | Path, channels: int = 3, limit: int | None = None) -> ImageSource:
    """The image files of `folder` (first `limit` by name), decoded like torch-fidelity decodes them."""
    files = list_images(folder)[:limit]

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(files), batch_size):
            x = torch.stack([load_image(f, channels) for f in files[i : i + batch_size]])  # (B, C, H, W) uint8
            yield x.float() / 127.5 - 1

    size = load_image(files[0], channels).shape[-1]
    content = content_hash(file_list_hash(files, folder), channels)
    return ImageSource(f"folder-{Path(folder).resolve().name}", "folder", size, len(files), batches, content)


def save_images(images: Tensor, folder: str | Path, start: int = 0) -> list[Path]:
    """Write images in [-1, 1] as PNGs `000000.png`, ... (rounded to uint8 as the extractors read them)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(to_uint8(images).cpu(), start):
        array = img.squeeze(0).numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
        paths.append(folder / f"{i:06d}.png")
        Image.fromarray(array).save(paths[-1])
    return paths


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [-1, 1] -> uint8 in [0, 255], rounded as a PNG of them stores them."""
    return ((images.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
