"""The streamed scores equal torchmetrics' keep-every-feature KID and IS, and memory stays bounded."""

import pytest
import torch
from torch import nn
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from prunegen.metrics import GeneratorScorer
from prunegen.metrics.streaming import Identity

D, K = 16, 12  # feature and logit widths


class Given(nn.Module):
    """An extractor whose "images" (N, D + K, 1, 1) carry their features and logits."""

    name, resize, accuracy, channels = "given", "none", None, 1
    num_features, num_logits = D, K

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, :D, 0, 0], x[:, D:, 0, 0]


def _images(n: int, shift: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, D, generator=g) + shift
    logits = 3 * torch.randn(n, K, generator=g) + shift * torch.arange(K)
    return torch.cat([features, logits], 1)[:, :, None, None]


def _score(real: torch.Tensor, fake: torch.Tensor, seed: int, max_features: int | None, batch: int = 64) -> dict:
    scorer = GeneratorScorer(Given(), real, batch_size=batch, max_features=max_features, kid_subsets=20)
    return scorer.score_images(fake.split(batch), len(fake), seed=seed)


def _torchmetrics(real: torch.Tensor, fake: torch.Tensor, seed: int, subset_size: int) -> tuple[float, ...]:
    kid = KernelInceptionDistance(feature=Identity(D), subsets=20, subset_size=subset_size)
    kid.update(real[:, :D, 0, 0], real=True)
    kid.update(fake[:, :D, 0, 0], real=False)
    inception = InceptionScore(feature=Identity(K), splits=10)
    inception.update(fake[:, D:, 0, 0])
    torch.manual_seed(seed)  # KID's subsets, then IS's permutation, from the same stream
    kid_mean, kid_std = kid.compute()
    is_mean, is_std = inception.compute()
    return float(kid_mean), float(kid_std), float(is_mean), float(is_std)


@pytest.mark.parametrize("num_fake", [300, 257])  # 257: the last IS split is shorter, the last batch too
def test_streamed_kid_and_is_equal_torchmetrics(num_fake) -> None:
    real, fake = _images(200, 0.0, seed=0), _images(num_fake, 0.4, seed=1)
    ours = _score(real, fake, seed=7, max_features=None)
    theirs = _torchmetrics(real, fake, seed=7, subset_size=200)
    assert ours["kid_subset_size"] == 200
    for key, value in zip(("kid_mean", "kid_std", "is_mean", "is_std"), theirs):
        assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    # The same with a bound above the sample counts: nothing is subsampled, nothing changes.
    assert _score(real, fake, seed=7, max_features=1000)["kid_mean"] == ours["kid_mean"]


def test_bounded_sample_is_deterministic_and_close() -> None:
    real, fake = _images(600, 0.0, seed=0), _images(1500, 0.5, seed=1)
    full = _score(real, fake, seed=3, max_features=None)
    bounded = _score(real, fake, seed=3, max_features=400)
    rebatched = _score(real, fake, seed=3, max_features=400, batch=100)  # the same samples kept, whatever the batching
    sums = ("fid", "is_mean", "is_std")  # float sums in another order
    assert {k: v for k, v in rebatched.items() if k not in sums} == {k: v for k, v in bounded.items() if k not in sums}
    assert all(rebatched[k] == pytest.approx(bounded[k], rel=1e-9) for k in sums)
    assert bounded["max_features"] == 400 and bounded["num_samples"] == 1500 and bounded["num_real"] == 600
    assert bounded["fid"] == pytest.approx(full["fid"], rel=1e-9)  # FID streams every sample
    assert bounded["is_mean"] == pytest.approx(full["is_mean"], rel=0.05)  # IS too (its splits are drawn anew)
    assert bounded["kid_mean"] == pytest.approx(full["kid_mean"], rel=0.25)  # KID from a 400-sample subset
    assert bounded["precision"] == pytest.approx(full["precision"], abs=0.1)
