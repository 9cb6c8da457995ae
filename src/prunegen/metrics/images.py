"""Where images to score come from: a datamodule's split or a folder of image files."""

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

EXTENSIONS = (".png", ".jpg", ".jpeg")  # torch-fidelity's defaults


@dataclass
class ImageSource:
    """A fixed set of images, streamed in float batches (N, C, H, W) in [-1, 1]."""

    name: str  # dataset name, or the folder's identity (for cache keys)
    split: str
    image_size: int | None  # None when the images' own sizes are used
    count: int
    batches: Callable[[int], Iterator[Tensor]]  # batch_size -> batches
    content: str | None = None  # hash of the images (or of the file list) where it is cheap to know


def tensor_hash(x: Tensor) -> str:
    """sha256 (16 hex digits) of a tensor's shape and values."""
    x = x.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(x.shape)}:{x.dtype}".encode())
    h.update(x.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def from_datamodule(datamodule: Any, split: str = "train", limit: int | None = None) -> ImageSource:
    """The first `limit` images (all if None) of `datamodule.split_tensors(split)`."""
    images = datamodule.split_tensors(split)[0]
    images = images[:limit] if limit is not None else images

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(images), batch_size):
            yield images[i : i + batch_size]

    # The content hash makes a changed split (fractions, seed, image subset) miss the cache.
    return ImageSource(datamodule.name, split, datamodule.image_size, len(images), batches, tensor_hash(images))


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
    # Identity for cache keys: the folder and its files' names, sizes and modification times.
    h = hashlib.sha256(str(Path(folder).resolve()).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    name = f"folder-{Path(folder).resolve().name}"

    def batches(batch_size: int) -> Iterator[Tensor]:
        for i in range(0, len(files), batch_size):
            x = torch.stack([load_image(f, channels) for f in files[i : i + batch_size]])  # (B, C, H, W) uint8
            yield x.float() / 127.5 - 1

    size = load_image(files[0], channels).shape[-1]
    return ImageSource(name, "folder", size, len(files), batches, h.hexdigest()[:16])


def save_images(images: Tensor, folder: str | Path, start: int = 0) -> list[Path]:
    """Write images in [-1, 1] as PNGs `000000.png`, ... (rounded to uint8 as the extractors read them)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    u8 = ((images.detach().cpu().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    paths = []
    for i, img in enumerate(u8, start):
        array = img.squeeze(0).numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
        paths.append(folder / f"{i:06d}.png")
        Image.fromarray(array).save(paths[-1])
    return paths
