"""Peak memory of scoring 50,000 Inception-sized samples: keep-every-feature (before) vs streamed (now).

No Inception forward pass: a stand-in extractor emits random 2048-d features and 1008 logits per image
(what torch-fidelity's InceptionV3 gives), so only the metrics' own memory is measured. Each mode runs
in its own process; the peak RSS (ru_maxrss) is reported above the process's RSS before scoring.

- `keep-all`: the design prunegen had before, as torchmetrics gives it (KID and IS keep every feature
  and logit, precision/recall a second list of fake features, the statistics every real feature): a
  lower bound of the old code, whose own copies added more (2.73 GB at 50,000, measured at commit babe19a).
  Precision/recall's k-NN pass over 50,000 x 50,000 distances is skipped (`--keep-all-pr` runs it).
- `streamed`: `GeneratorScorer` now: FID sums, IS per-split sums, a fixed sample of `--max-features`
  features per side for KID and precision/recall (torch-fidelity's subsets of 1,000).

    .venv/bin/python scripts/bench/scoring_memory.py [--num 50000] [--dim 2048] [--max-features 10000]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from prunegen.metrics import GeneratorScorer, compute_real_stats, from_tensor
from prunegen.metrics.streaming import Identity, precision_recall

LOGITS = 1008


class RandomFeatures(nn.Module):
    """Stand-in extractor: an "image" is its sample index (N, 1, 1, 1); features and logits are drawn from it."""

    name, resize, accuracy, channels, num_logits = "random", "none", None, 3, LOGITS

    def __init__(self, dim: int, shift: float = 0.0) -> None:
        super().__init__()
        self.num_features, self.shift = dim, shift

    def extract(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(int(x[0]) + int(1e6 * self.shift))
        features = torch.randn(len(x), self.num_features, generator=g).abs_() + self.shift  # pool features are >= 0
        return features, 2 * torch.randn(len(x), LOGITS, generator=g)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def index_batches(n: int, batch: int):
    for i in range(0, n, batch):
        yield torch.arange(i, min(i + batch, n), dtype=torch.float32)[:, None, None, None]


def streamed(args: argparse.Namespace) -> dict:
    real = from_tensor(torch.arange(args.num, dtype=torch.float32)[:, None, None, None])
    stats = compute_real_stats(RandomFeatures(args.dim), real, args.batch, "cpu", args.max_features)
    scorer = GeneratorScorer(RandomFeatures(args.dim, shift=0.05), stats, args.batch, max_features=args.max_features)
    result = scorer.score_images(index_batches(args.num, args.batch), args.num)
    return {k: result[k] for k in ("fid", "kid_mean", "is_mean", "precision", "recall")}


def keep_all(args: argparse.Namespace) -> dict:
    warnings.filterwarnings("ignore", ".*will save all extracted features.*")
    fid = FrechetInceptionDistance(feature=Identity(args.dim))
    kid = KernelInceptionDistance(feature=Identity(args.dim), subsets=100, subset_size=1000)
    inception = InceptionScore(feature=Identity(LOGITS), splits=10)
    real, extractor = [], RandomFeatures(args.dim)
    for x in index_batches(args.num, args.batch):  # the real statistics: sums, and every feature
        features = extractor.extract(x)[0]
        fid.update(features, real=True)
        real.append(features)
    real = torch.cat(real)  # one tensor, shared by KID and precision/recall
    kid.real_features = [real]
    pr_fake, extractor = [], RandomFeatures(args.dim, shift=0.05)
    for x in index_batches(args.num, args.batch):
        features, logits = extractor.extract(x)
        fid.update(features, real=False)
        kid.update(features, real=False)
        pr_fake.append(features)  # precision/recall kept its own list of fake features
        inception.update(logits)
    kid_mean, _ = kid.compute()
    is_mean, _ = inception.compute()
    out = {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "is_mean": float(is_mean)}
    if args.keep_all_pr:
        out["precision"], out["recall"] = precision_recall(real, torch.cat(pr_fake))
    return out


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    before = rss_mb()
    start = time.perf_counter()
    scores = (streamed if args.child == "streamed" else keep_all)(args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    seconds = time.perf_counter() - start
    print(json.dumps({"mode": args.child, "before_mb": before, "peak_mb": peak, "seconds": seconds, **scores}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=50000, help="fake samples, and as many real images")
    parser.add_argument("--dim", type=int, default=2048, help="feature width (Inception's pool: 2048)")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--max-features", type=int, default=10000, help="streamed: features kept per side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["keep-all", "streamed"], choices=["keep-all", "streamed"])
    parser.add_argument("--keep-all-pr", action="store_true", help="also run keep-all's precision/recall (slow)")
    parser.add_argument("--child", choices=["keep-all", "streamed"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print(f"{args.num} real + {args.num} fake samples, {args.dim}-d features, {LOGITS} logits, batch {args.batch}")
    for mode in args.modes:
        cmd = [sys.executable, __file__, "--child", mode, *sys.argv[1:]]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        scores = ", ".join(f"{k} {r[k]:.4g}" for k in ("fid", "kid_mean", "is_mean", "precision") if k in r)
        print(f"{mode:9s} peak RSS {r['peak_mb']:7.0f} MB, scoring's own {r['peak_mb'] - r['before_mb']:7.0f} MB, "
              f"{r['seconds']:6.1f} s   ({scores})")


if __name__ == "__main__":
    main()
