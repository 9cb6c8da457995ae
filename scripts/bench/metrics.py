"""Images/s of prunegen's Inception FID pipeline vs torch-fidelity's `calculate_metrics`, measured in one run.

Both score the same two PNG folders (digits vs shifted digits) with the same weights file: a random-init
InceptionV3 whose BatchNorm statistics come from a few digits (no download; the timing does not depend
on the weights' values). Ours is the whole `prunegen-eval fake_dir= real_dir=` path (FID, KID, IS and
precision/recall in one pass); torch-fidelity computes FID only.

    .venv/bin/python scripts/bench/metrics.py [--images 32] [--batch-size 16] [--threads 1]
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch_fidelity import calculate_metrics

from prunegen.data.digits import DigitsDataModule
from prunegen.metrics import InceptionFeatures, ScorerSpec, from_folder, random_inception_weights, save_images


def prepare(root: Path, n: int) -> tuple[Path, Path, Path]:
    digits = DigitsDataModule(image_size=32).split_tensors("train")[0]
    shifted = torch.roll(digits[n : 2 * n], shifts=(4, 4), dims=(2, 3))
    save_images(digits[:n], root / "real")
    save_images(shifted, root / "fake")
    weights = random_inception_weights(root / "inception.pth", [torch.cat([digits[-8:], shifted[:8]])])
    return root / "real", root / "fake", weights


def ours(real: Path, fake: Path, weights: Path, batch_size: int) -> float:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    spec = ScorerSpec(InceptionFeatures(weights), batch_size=batch_size, cache_dir=None)  # no cache: computed, timed
    scorer = spec.build(device=device, real_dir=real)
    fakes = from_folder(fake)
    return scorer.score_images(fakes.batches(batch_size), fakes.count, device)["fid"]


def theirs(real: Path, fake: Path, weights: Path, batch_size: int) -> float:
    return calculate_metrics(
        input1=str(fake),
        input2=str(real),
        fid=True,
        feature_extractor_weights_path=str(weights),
        batch_size=batch_size,
        cuda=torch.cuda.is_available(),
        save_cpu_ram=True,  # no DataLoader worker processes, like ours
        cache=False,
        verbose=False,
    )["frechet_inception_distance"]


def timed(fn, *args) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="images per folder (both folders are scored)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        real, fake, weights = prepare(Path(tmp), args.images)
        fid_ours, t_ours = timed(ours, real, fake, weights, args.batch_size)
        fid_theirs, t_theirs = timed(theirs, real, fake, weights, args.batch_size)
    n = 2 * args.images
    print(f"device {'cuda' if torch.cuda.is_available() else 'cpu'}, {args.threads} thread(s), {n} images")
    print(f"prunegen      {n / t_ours:7.2f} images/s  ({t_ours:.1f} s)  FID {fid_ours:.6g}  (+KID, IS, PR)")
    print(f"torch-fidelity {n / t_theirs:6.2f} images/s  ({t_theirs:.1f} s)  FID {fid_theirs:.6g}")
    print(f"ratio prunegen / torch-fidelity: {t_theirs / t_ours:.2f}x   FID rel. diff {abs(fid_ours / fid_theirs - 1):.1e}")


if __name__ == "__main__":
    main()
