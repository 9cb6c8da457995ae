"""A small CNN trained on the dataset's own training split: the `classifier` feature extractor."""

import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from prunegen.data.protocol import ImageData
from prunegen.fileio import content_hash, save_torch
from prunegen.metrics.rng import isolated_rng

log = logging.getLogger("prunegen")
CLASSIFIER_VERSION = 2  # bump when training or what is stored changes
TRAINING = {"batch_size": 64, "lr": 1e-2}


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class DomainClassifier(nn.Module):
    """Conv 32-64-128 (BN, ReLU, max-pool) -> global average pool -> linear; inputs in [-1, 1]."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        layers, c = [], in_channels
        for i, w in enumerate(widths):
            layers.append(_block(c, w))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)
        self.num_features, self.in_channels = c, in_channels

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features (N, num_features)."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, num_classes)."""
        return self.head(self.features(x))


def random_translate(x: Tensor, max_shift: int) -> Tensor:
    """Shift each image by a random whole number of pixels in [-max_shift, max_shift], edges replicated."""
    n, _, h, w = x.shape
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), device=x.device).to(x.dtype)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = 2 * shift[:, 0] / w  # whole-pixel shifts keep bilinear sampling exact
    theta[:, 1, 2] = 2 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.no_grad()
def evaluate_accuracy(classifier: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of `classifier` on (images, labels)."""
    classifier.eval()
    device = next(classifier.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = classifier(images[i : i + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[i : i + batch_size]).sum().item()
    return correct / len(images)


def train_classifier(
    arch: dict[str, Any],
    images: Tensor,
    labels: Tensor,
    epochs: int = 8,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 1e-2,
    device: torch.device | str = "cpu",
) -> DomainClassifier:
    """Train a fresh DomainClassifier with Adam; deterministic given `seed`, global RNG untouched."""
    batch_size = min(batch_size, len(images))  # a tiny dataset still makes one step per epoch
    with isolated_rng(seed, device):
        classifier = DomainClassifier(**arch).to(device)
        opt = torch.optim.Adam(classifier.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * (len(images) // batch_size))
        classifier.train()
        for epoch in range(epochs):
            if epoch:
                log.info(f"domain classifier: epoch {epoch + 1}/{epochs}")
            perm = torch.randperm(len(images))
            for i in range(0, len(images) - batch_size + 1, batch_size):
                idx = perm[i : i + batch_size]
                x = random_translate(images[idx].to(device), max_shift=2)
                loss = F.cross_entropy(classifier(x), labels[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return classifier.eval()


def classifier_key(datamodule: ImageData, epochs: int = 8, seed: int = 0) -> dict[str, Any]:
    """Everything the cached classifier depends on: the data's content (not its name), architecture, training."""
    arch = {"in_channels": datamodule.channels, "num_classes": datamodule.num_classes, "widths": [32, 64, 128]}
    return {"data": datamodule.fingerprint(), "arch": arch, "epochs": epochs, "seed": seed, **TRAINING,
            "version": CLASSIFIER_VERSION}


def classifier_cache_path(datamodule: ImageData, cache_dir: str | Path, key: dict[str, Any]) -> Path:
    """`<cache_dir>/classifier_<dataset>_<size>px_<hash of key>.pt`: one file per content and settings."""
    return Path(cache_dir) / f"classifier_{datamodule.name}_{datamodule.image_size}px_{content_hash(key)}.pt"


def _load_cached(path: Path, key: dict[str, Any]) -> tuple[DomainClassifier, float] | None:
    if not path.is_file():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if content_hash(payload.get("key")) != content_hash(key):
        return None  # a hash collision of the file name, or a file from elsewhere: retrain and overwrite
    with isolated_rng(0):  # its random init is overwritten, but must not advance the caller's RNG
        classifier = DomainClassifier(**_arch(key))
    classifier.load_state_dict(payload["state_dict"])
    return classifier.eval(), float(payload["accuracy"])


def _arch(key: dict[str, Any]) -> dict[str, Any]:
    return {**key["arch"], "widths": tuple(key["arch"]["widths"])}


def load_or_train_classifier(
    datamodule: ImageData,
    cache_dir: str | Path | None = ".cache",
    epochs: int = 8,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[DomainClassifier, float]:
    """The cached classifier for `datamodule`'s content, or one trained on "train" and cached (unless
    `cache_dir` is None); returns (model, test accuracy)."""
    key = classifier_key(datamodule, epochs, seed)
    path = classifier_cache_path(datamodule, cache_dir, key) if cache_dir is not None else None
    cached = _load_cached(path, key) if path is not None else None
    if cached is not None:
        return cached[0].to(device), cached[1]
    start = time.perf_counter()
    images, labels = datamodule.split_tensors("train")
    log.info(f"domain classifier: training on the {len(images)} training images of {datamodule.name} for {epochs} "
             f"epochs (once; cached as {path})")
    classifier = train_classifier(_arch(key), images, labels, epochs=epochs, seed=seed, device=device, **TRAINING)
    seconds = time.perf_counter() - start
    accuracy = evaluate_accuracy(classifier, *datamodule.split_tensors("test"))
    log.info(f"domain classifier: {accuracy:.1%} held-out accuracy after {seconds:.0f} s")
    state = {k: v.cpu() for k, v in classifier.state_dict().items()}
    if path is not None:
        save_torch({"key": key, "state_dict": state, "accuracy": accuracy, "train_seconds": seconds}, path)
    return classifier, accuracy
