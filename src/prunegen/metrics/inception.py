"""torch-fidelity's InceptionV3 (the network behind published FIDs) as a FeatureExtractor, offline-safe."""

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from prunegen.data.protocol import ImageData
from prunegen.fileio import save_torch
from prunegen.metrics.images import to_uint8
from prunegen.metrics.rng import isolated_rng

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
FEATURES = ["2048", "logits_unbiased"]  # pool features for FID/KID/PR, logits for IS (torch-fidelity's defaults)
RESIZE = "bilinear-tf1 to 299 (torch-fidelity), from uint8"


def inception_cache_dir() -> Path:
    """Where torch-fidelity (torch.hub) keeps the weights: `$TORCH_HOME/hub/checkpoints`."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_inception_weights(path: str | Path | None = None) -> Path:
    """The weights file: `path` if given, else torch-fidelity's cache; never downloads.

    Raises:
        FileNotFoundError: naming the file, the folder and the config key, before anything runs.
    """
    if path is not None:
        found = Path(path).expanduser()
        if found.is_file():
            return found
        raise FileNotFoundError(
            f"metrics.inception_weights={path} does not exist. Put the InceptionV3 weights "
            f"{INCEPTION_FILE} ({URL_INCEPTION_V3}) there, or set metrics.inception_weights to the file's path."
        )
    found = inception_cache_dir() / INCEPTION_FILE
    if found.is_file():
        return found
    raise FileNotFoundError(
        f"InceptionV3 weights not found: {INCEPTION_FILE} is not in {found.parent} and metrics.inception_weights "
        f"is not set. prunegen never downloads it; on a machine with internet run "
        f"`wget -P {found.parent} {URL_INCEPTION_V3}` (the folder is $TORCH_HOME/hub/checkpoints), "
        f"or set metrics.inception_weights=/path/to/{INCEPTION_FILE}."
    )


def to_uint8_rgb(x: Tensor) -> Tensor:
    """Float images in [-1, 1] -> uint8 RGB, rounded as when saved to PNG; grayscale repeated to 3 channels."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"Inception needs 1 or 3 channels, got images of shape {tuple(x.shape)}")
    return to_uint8(x)


class InceptionExtractor(nn.Module):
    """2048-d pool features and 1008 unbiased logits of torch-fidelity's InceptionV3, in one pass."""

    name = "inception"
    num_features = 2048
    num_logits = 1008
    channels = 3  # image files are read as RGB, like torch-fidelity reads them
    accuracy = None
    resize = RESIZE

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        self.weights_path = resolve_inception_weights(weights)
        # torch-fidelity loads the file itself (weights_only=False there, as in torchmetrics).
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", FEATURES, str(self.weights_path))
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "InceptionExtractor":
        """Stay in eval mode: BatchNorm must use its running statistics."""
        return super().train(False)

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features (N, 2048), logits (N, 1008)) of images in [-1, 1]."""
        features, logits = self.net(to_uint8_rgb(x))
        return features, logits


class InceptionFeatures:
    """`metrics/extractor=inception`: torch-fidelity's InceptionV3; a missing weights file fails here, before training."""

    name = "inception"

    def __init__(self, weights: str | Path | None = None) -> None:
        self.weights = resolve_inception_weights(weights)

    def build(
        self, datamodule: ImageData | None, cache_dir: str | Path | None, device: torch.device | str = "cpu"
    ) -> InceptionExtractor:
        """The network with its weights, on `device` (the data plays no part)."""
        return InceptionExtractor(self.weights).to(device)


class _UnloadedInceptionV3(FeatureExtractorInceptionV3):
    """The same architecture that keeps PyTorch's default init instead of loading the file it is given."""

    def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: ANN001
        return None


@torch.no_grad()
def random_inception_weights(path: str | Path, calibration: Iterable[Tensor], seed: int = 0) -> Path:
    """Save a random-init InceptionV3 state dict whose BatchNorm statistics come from `calibration` batches.

    For offline tests and benchmarks only. With plain random init the pool features barely depend on the
    image (every FID is ~0); BatchNorm statistics measured on real images make them informative.
    `calibration` yields float batches in [-1, 1].
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({}, path)  # torch-fidelity's constructor reads the file before we overwrite it below
    with isolated_rng(seed):
        net = _UnloadedInceptionV3("inception-v3-compat", FEATURES, str(path))
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    net.train()
    for x in calibration:
        net(to_uint8_rgb(x))
    for bn in bns:
        bn.momentum = 0.1
    save_torch(net.state_dict(), path)
    return path
