"""Does removing channels make the generator faster? prunegen's compaction vs Torch-Pruning's own.

On the default digits DCGAN with 50% of the channels of every hidden layer removed, measured side by
side in one run (this machine is shared and noisy): MACs ratio (PyTorch's FlopCounterMode), measured CPU
speedup (batch 256, median), and their quotient (1.0 = the speedup the MACs promise).

    .venv/bin/python scripts/bench/pruning.py [--sparsity 0.5] [--ngf 32] [--repeats 15]
"""

import argparse

import torch
import torch_pruning as tp

from prunegen.deploy.inference import latency_ms, prepare_inference
from prunegen.generator import count_macs, max_abs_diff
from prunegen.masks import unmasked_copy
from prunegen.models.networks import DCGANGenerator
from prunegen.pruning import PruningCallback
from prunegen.pruning.compact import compact


class _Holder(torch.nn.Module):
    """The LightningModule surface the callback needs: a `generator` submodule."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator


def ours(dense: DCGANGenerator, sparsity: float, round_to: int) -> torch.nn.Module:
    holder = _Holder(unmasked_copy(dense))
    cb = PruningCallback(granularity="structured", final_sparsity=sparsity, round_to=round_to)
    cb.setup(None, holder, "fit")
    cb.prune(holder, sparsity)
    small = compact(holder.generator)
    assert max_abs_diff(holder.generator, small) <= 1e-5
    return small


def torch_pruning(dense: DCGANGenerator, sparsity: float) -> torch.nn.Module:
    g = unmasked_copy(dense)
    pruner = tp.pruner.MagnitudePruner(g, example_inputs=torch.randn(2, g.latent_dim), importance=tp.importance.MagnitudeImportance(p=1),
                                       pruning_ratio=sparsity, ignored_layers=[g.net[-2]])
    pruner.step()
    return g.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dense = DCGANGenerator(ngf=args.ngf).eval()
    dense(torch.randn(64, dense.latent_dim))
    macs = lambda g: count_macs(g)  # noqa: E731
    off = dict(fuse_batchnorm=False, channels_last=False, subpixel_max_channels=0)
    variants = {
        "torch-pruning, as pruned": (unmasked_copy(dense), torch_pruning(dense, args.sparsity), off),
        "prunegen compact, plain": (dense, ours(dense, args.sparsity, 1), off),
        "prunegen compact, sub-pixel output layer": (dense, ours(dense, args.sparsity, 1), dict(off, subpixel_max_channels=4)),
        "prunegen compact, sub-pixel + fused BN": (dense, ours(dense, args.sparsity, 1), dict(fuse_batchnorm=True, channels_last=False)),
        "prunegen compact, sub-pixel + fused BN + channels_last": (dense, ours(dense, args.sparsity, 1), dict(fuse_batchnorm=True, channels_last=True)),
        "prunegen compact, sub-pixel + fused BN, widths of 8k": (dense, ours(dense, args.sparsity, 8), dict(fuse_batchnorm=True, channels_last=False)),
    }
    print(f"DCGAN ngf={args.ngf}, {args.sparsity:.0%} of hidden channels removed, batch 256, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'variant':52s} {'dense ms':>9s} {'compact ms':>10s} {'MACs ratio':>10s} {'speedup':>8s} {'quotient':>9s}")
    for name, (d, c, prep) in variants.items():
        ratio = macs(d) / macs(c)
        t_dense, t_small = latency_ms(prepare_inference(d, **prep), prepare_inference(c, **prep), repeats=args.repeats)
        print(f"{name:52s} {t_dense:9.1f} {t_small:10.1f} {ratio:10.2f} {t_dense / t_small:8.2f} {t_dense / t_small / ratio:9.2f}")


if __name__ == "__main__":
    main()
