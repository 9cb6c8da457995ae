"""What the metrics, the domain classifier and the records read from a datamodule (no attribute probing)."""

from typing import Protocol, runtime_checkable

import torch

SPLITS = ("train", "val", "test")


@runtime_checkable
class ImageData(Protocol):
    """A labelled or unlabelled image dataset with fixed splits; every prunegen datamodule is one."""

    name: str  # identifies the dataset in records and cache keys
    image_size: int  # S of the (C, S, S) images
    channels: int  # C
    num_classes: int  # 0: unlabelled (labels are then all 0)

    def split_tensors(self, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, C, S, S) in [-1, 1], labels (N,) long) of one of SPLITS; a fixed subset when capped."""
        ...

    def fingerprint(self) -> str:
        """Identity of the images and labels served (a content hash): scoring caches are keyed by it."""
        ...
