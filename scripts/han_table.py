"""The table of scripts/han_digits.sh: per threshold round, sparsity and FID over seeds, and what the
last round's unstructured generator buys on disk and on the CPU.

    python scripts/han_table.py RUN_DIR [RUN_DIR ...]    (experiment=han_digits run folders; grouped by alpha)

Per round: the achieved weight sparsity of the generator's convolutions (metrics.json `pruning.rounds`),
the FID scored just before the next round (the EvaluationCallback's history in last.ckpt), FID / the
dense teacher's FID (`dense_metrics`, same budget), classes. For the last round's generator (EMA weights,
masks applied): nonzero parameters, file size stored dense (torch.save), as torch COO sparse tensors and as
a packed bitmask + nonzero values (float32, no compression), and CPU latency dense vs pruned (batch 256).
"""

import io
import json
import statistics
import sys
from pathlib import Path

import torch

from prunegen.deploy.compact import bitmask_decode, bitmask_encode
from prunegen.deploy.inference import latency_ms
from prunegen.masks import unmasked_copy
from prunegen.run.checkpoint import load_model


def saved_bytes(obj: object) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def storage(generator: torch.nn.Module) -> dict:
    """Parameters, nonzero, and file bytes of one plain generator, dense / COO / bitmask."""
    state = generator.state_dict()
    packed = bitmask_encode(state)
    assert all(torch.equal(v, state[k]) for k, v in bitmask_decode(packed).items())  # lossless
    coo = {k: v.to_sparse() if v.is_floating_point() and v.dim() >= 2 else v for k, v in state.items()}
    params = [p for p in generator.parameters()]
    return {"params": sum(p.numel() for p in params), "nonzero": sum(int(p.count_nonzero()) for p in params),
            "dense_bytes": saved_bytes(state), "coo_bytes": saved_bytes(coo), "bitmask_bytes": saved_bytes(packed)}


def plain_generator(ckpt: Path) -> torch.nn.Module:
    model, _ = load_model(ckpt)
    model.use_ema_weights()  # what is scored and shipped: the EMA's weights, with the generator's zeros
    return unmasked_copy(model.generator).eval()


def run_rows(run: Path) -> tuple[list[dict], dict]:
    record = json.loads((run / "metrics.json").read_text())
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    (history,) = [v["history"] for k, v in ckpt["callbacks"].items() if k.startswith("EvaluationCallback")]
    scores = dict((int(e), r) for e, r in history)
    dense_fid = record["dense_metrics"]["fid"]
    rounds, total = record["pruning"]["rounds"], record["generator"]["params_total"]
    rows = []
    for i, r in enumerate(rounds):
        scored = (rounds[i + 1]["epoch"] - 1) if i + 1 < len(rounds) else max(scores)
        s = scores[scored]
        rows.append({"round": i + 1, "sparsity": r["achieved_sparsity"], "fid": s["fid"], "ratio": s["fid"] / dense_fid,
                     "classes": s.get("class_coverage"), "nonzero": total - sum(x["masked"] for x in r["layers"])})
    return rows, {"dense_fid": dense_fid, "dense_classes": record["dense_metrics"].get("class_coverage")}


def fmt(values: list[float], spec: str) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{spec}} ± {sd:{spec}}"


def round_table(runs: list[Path]) -> None:
    """One row per round, mean ± std over the runs (seeds) given."""
    per_seed = [run_rows(r) for r in runs]
    print(f"dense FID {[round(d['dense_fid'], 3) for _, d in per_seed]}, classes {[round(d['dense_classes'], 2) for _, d in per_seed]}\n")
    print("| round | weight sparsity | nonzero params | FID | FID / dense | classes |\n|---|---|---|---|---|---|")
    for i in range(min(len(rows) for rows, _ in per_seed)):
        col = lambda key: [rows[i][key] for rows, _ in per_seed]  # noqa: E731
        print(f"| {i + 1} | {fmt(col('sparsity'), '.3f')} | {fmt(col('nonzero'), ',.0f')} | {fmt(col('fid'), '.2f')} | {fmt(col('ratio'), '.2f')} | "
              f"{fmt(col('classes'), '.2f')} |  per seed: {[round(x, 2) for x in col('ratio')]}")


def main(runs: list[Path]) -> None:
    by_alpha: dict[float, list[Path]] = {}
    for run in runs:
        by_alpha.setdefault(json.loads((run / "metrics.json").read_text())["pruning"]["alpha"], []).append(run)
    for alpha, group in sorted(by_alpha.items()):
        print(f"\nalpha = {alpha}: {[str(r) for r in group]}")
        round_table(group)
    print("\n| run | nonzero / params | dense file | COO file | bitmask file | CPU ms dense / pruned |\n|---|---|---|---|---|---|")
    for run in runs:
        record = json.loads((run / "metrics.json").read_text())
        pruned, dense = plain_generator(run / "checkpoints" / "last.ckpt"), plain_generator(Path(record["config"]["init_ckpt"]))
        s = storage(pruned)
        s["latency_ms_dense"], s["latency_ms_pruned"] = latency_ms(dense, pruned, batch=256, repeats=20)
        (run / "sparse_size.json").write_text(json.dumps(s, indent=1))
        print(f"| {run.name} | {s['nonzero']:,} / {s['params']:,} | {s['dense_bytes'] / 1024:.0f} KB | "
              f"{s['coo_bytes'] / 1024:.0f} KB | {s['bitmask_bytes'] / 1024:.0f} KB | "
              f"{s['latency_ms_dense']:.1f} / {s['latency_ms_pruned']:.1f} |")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
