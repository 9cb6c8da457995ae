"""What unstructured pruning buys on disk: file size of exported generators, dense vs sparse storage.

    python scripts/sparse_size.py RUN_DIR [RUN_DIR ...]   (run folders holding export.generator file)

For each run's exported generator (`generator_compact.pt`, plain weights with the pruned ones zero):
nonzero parameters, the dense file (torch.save), torch's COO sparse tensors (int64 indices) and a packed
bitmask + nonzero values (`prunegen.pruning.unstructured.bitmask_encode`), all float32, no compression.
"""

import io
import json
import sys
from pathlib import Path

import torch

from prunegen.pruning.compact import load_compact
from prunegen.pruning.unstructured import bitmask_decode, bitmask_encode


def saved_bytes(obj: object) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def sizes(path: Path) -> dict:
    state = load_compact(path).state_dict()
    coo = {k: v.to_sparse() if v.is_floating_point() and v.dim() >= 2 else v for k, v in state.items()}
    packed = bitmask_encode(state)
    assert all(torch.equal(a, state[k]) for k, a in bitmask_decode(packed).items())  # lossless
    floats = [v for v in state.values() if v.is_floating_point()]
    return {"params": sum(v.numel() for v in floats), "nonzero": sum(int(v.count_nonzero()) for v in floats),
            "dense_bytes": saved_bytes(state), "coo_bytes": saved_bytes(coo), "bitmask_bytes": saved_bytes(packed)}


def main(runs: list[str]) -> None:
    print("| run | nonzero / params | dense file | COO file | bitmask file |\n|---|---|---|---|---|")
    for run in runs:
        run = Path(run)
        path = run / "generator_compact.pt" if run.is_dir() else run
        s = sizes(path)
        (path.parent / "sparse_size.json").write_text(json.dumps(s, indent=1))
        kb = {k: s[k] / 1024 for k in ("dense_bytes", "coo_bytes", "bitmask_bytes")}
        print(f"| {path.parent} | {s['nonzero']:,} / {s['params']:,} | {kb['dense_bytes']:.0f} KB | "
              f"{kb['coo_bytes']:.0f} KB | {kb['bitmask_bytes']:.0f} KB |")


if __name__ == "__main__":
    main(sys.argv[1:])
