"""Reading a sweep: every metrics.json under a folder, whatever its status, as flat records with a kind
(train or eval), a status line, and the identity (overrides and composed config) that tells runs apart."""

import json
import re
from pathlib import Path
from typing import Any

from prunegen.run.lifecycle import changes_result
from prunegen.run.record import flatten, parse_overrides

SEED_KEYS = ("seed", "seeds")  # differ between the seeds of one configuration
# a round of an IMP run (pruning.rounds[i]) -> the flat key it fills in a table row
ROUND_KEYS = {"sparsity": "generator.sparsity", "fid": "metrics.fid", "fid_best": "metrics.fid_best",
              "kid_mean": "metrics.kid_mean", "is_mean": "metrics.is_mean", "class_coverage": "metrics.class_coverage"}


def kind_of(record: dict[str, Any]) -> str:
    """`eval` for prunegen-eval's records (configs/eval.yaml: task_name eval, a `source`), else `train`."""
    task = (record.get("config") or {}).get("task_name")
    return "eval" if task == "eval" or (task is None and "source" in record) else "train"


def earlier_attempts(record: dict[str, Any]) -> int:
    """How many attempts came before this one (the `attempts` list ends with the current attempt)."""
    earlier = list(record.get("attempts") or [])
    if earlier and earlier[-1].get("started") == record.get("started"):
        earlier = earlier[:-1]
    return len(earlier)


def status_of(record: dict[str, Any]) -> tuple[str, str]:
    """(status, detail): (`completed`, ''), (`failed`, the first line of the error), (`interrupted`, '<signal>
    after epoch <k>'). A record with an `error` is never completed (a failed export once left `completed`
    beside its error)."""
    status = record.get("status") or "unknown"
    error = str(record.get("error") or "").strip()
    if error and status == "completed":
        status = "failed"
    if status == "failed":
        return status, error.splitlines()[0] if error else "no error recorded"
    if status == "interrupted":
        return status, f"{record.get('signal') or 'unknown signal'} after epoch {record.get('last_epoch', '?')}"
    return status, ""


def _seed_free(value: str, seed: Any) -> str:
    """A path with the run's own seed number replaced (out/seed1/last.ckpt -> out/seed{seed}/last.ckpt): a per-seed
    dense checkpoint (or an IMP run's masks) is the same configuration on another seed. Only the last
    occurrence: a digit of a folder above it (/tmp/run0/) is not the seed."""
    if seed is None:
        return value
    hits = list(re.finditer(rf"(?<!\d){re.escape(str(seed))}(?!\d)", value))
    return value if not hits else value[:hits[-1].start()] + "{seed}" + value[hits[-1].end():]


def _ignored(key: str) -> bool:
    """Keys that cannot change a result (the run lifecycle's list) and the seed."""
    return key in SEED_KEYS or not changes_result(key)


def _per_seed_path(key: str, value: str) -> bool:
    """Checkpoints and other files (masks of an IMP run, ...) that a run of each seed has its own of."""
    return key.endswith("ckpt") or key.endswith("ckpt_path") or "/" in value


def override_identity(overrides: list[str], seed: Any = None) -> dict[str, str]:
    """['+a.b=1', 'seed=0', 'init_ckpt=/x/seed0/last.ckpt'] -> {'a.b': '1', 'init_ckpt': '/x/seed{seed}/last.ckpt'}."""
    out = {}
    for key, value in parse_overrides(overrides).items():
        value = value or ""  # a deletion (~key)
        if not _ignored(key):
            out[key] = _seed_free(value, seed) if _per_seed_path(key, value) else value
    return out


def config_identity(config: dict[str, Any], seed: Any = None) -> dict[str, str]:
    """The composed config as flat key -> JSON text, without the keys that cannot change a result."""
    flat = flatten(config or {})
    out = {}
    for k, v in flat.items():
        if not _ignored(k):
            text = json.dumps(v, sort_keys=True)
            out[k] = _seed_free(text, seed) if isinstance(v, str) and _per_seed_path(k, v) else text
    return out


def load_record(path: Path) -> dict[str, Any]:
    """One metrics.json as a flat record with path, kind, status, seeds and identity."""
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: metrics.json holds {type(raw).__name__}, not an object")
    record = flatten({k: v for k, v in raw.items() if k not in ("config", "attempts", "pruning")})
    record.update(flatten(raw.get("pruning") or {}, "pruning."))
    config = raw.get("config") or {}
    seed = (raw.get("run") or {}).get("seed", config.get("seed"))
    seeds = (raw.get("run") or {}).get("seeds") or ([] if seed is None else [seed])
    status, detail = status_of(raw)
    overrides = (raw.get("run") or {}).get("overrides") or []
    record.update(label=config.get("label"), path=str(path.parent), kind=kind_of(raw), status=status, detail=detail, seed_list=list(seeds),
                  overrides=override_identity(overrides, seed), config_id=config_identity(config, seed),
                  literal_id={"overrides": override_identity(overrides), "config_id": config_identity(config)},
                  completed=status == "completed", earlier_attempts=earlier_attempts(raw), rounds=scored_rounds(raw))
    record.pop("pruning.rounds", None)
    _derive(record)
    return record


def _derive(record: dict[str, Any]) -> None:
    """Columns computed from others: FID / dense (the same run's teacher, scored with the same budget),
    FID / floor (at the floor's sample size where the run recorded it: `fid_at_floor_n`), the exported
    file in KB, the fraction of weights remaining, the std of an eval over its seeds."""
    fid, dense = record.get("metrics.fid"), record.get("dense_metrics.fid")
    if isinstance(fid, (int, float)) and isinstance(dense, (int, float)) and dense:
        record["fid_vs_dense"] = fid / dense
    floor, same_n = record.get("metrics.fid_floor"), record.get("metrics.fid_at_floor_n")
    same_n = same_n if isinstance(same_n, (int, float)) else fid  # records before it: the FID at the run's sample size
    if isinstance(same_n, (int, float)) and isinstance(floor, (int, float)) and floor > 0:
        record["fid_vs_floor"] = same_n / floor
    for side in ("dense", "compact"):
        if isinstance(record.get(f"export.{side}.file_bytes"), (int, float)):
            record[f"export.{side}.file_kb"] = record[f"export.{side}.file_bytes"] / 1024
    if isinstance(record.get("generator.sparsity"), (int, float)):
        record["remaining"] = 1.0 - record["generator.sparsity"]


def scored_rounds(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """An IMP run's rounds, each scored before it was pruned (`round` and `fid` keys, pruning/imp.py). Other
    pruning callbacks also list their rounds (epoch, target, achieved sparsity): those are not table rows,
    the run's final scores are."""
    rounds = (raw.get("pruning") or {}).get("rounds") or []
    return [r for r in rounds if isinstance(r, dict) and "round" in r and "fid" in r]


def _target(rnd: dict[str, Any]) -> float | None:
    return rnd.get("target_sparsity") if rnd.get("target_sparsity") is not None else rnd.get("sparsity")


def link_dense(rows: list[dict[str, Any]]) -> None:
    """FID / dense for round rows without a dense round of their own: a control that starts at a later round
    (pruning.start_round) trains from the same initial weights as the IMP run of its seed, whose round 0 is
    its dense model. Used only when exactly one run of that seed in the sweep has a dense round."""
    dense: dict[Any, set[float]] = {}
    for r in rows:
        if r.get("round") is not None and r.get("remaining") == 1.0 and isinstance(r.get("metrics.fid"), (int, float)):
            dense.setdefault(tuple(r["seed_list"]), set()).add(r["metrics.fid"])
    for r in rows:
        fids = dense.get(tuple(r["seed_list"]), set())
        if r.get("round") is not None and r.get("fid_vs_dense") is None and len(fids) == 1 and r.get("metrics.fid") is not None:
            r["fid_vs_dense"] = r["metrics.fid"] / next(iter(fids))


def expand_rounds(record: dict[str, Any]) -> list[dict[str, Any]]:
    """An IMP run's rounds as rows of their own (each round's ticket, scored before it is pruned);
    FID / dense against the run's unpruned round when it has one. A run without rounds is itself."""
    if not record["rounds"]:
        return [record]
    dense = next((r.get("fid") for r in record["rounds"] if _target(r) == 0), None)
    rows = []
    for rnd in record["rounds"]:
        row = {k: v for k, v in record.items() if not k.startswith(("metrics.", "export.", "dense_metrics.", "generator."))}
        row.update({flat: rnd.get(key) for key, flat in ROUND_KEYS.items()})
        row.update(round=rnd.get("round"), epoch=rnd.get("epoch"), rounds=[])
        row["metrics.extractor"] = record.get("metrics.extractor")
        # the protocol's point (1 - 0.8^k): what IMP, its controls and the paper are compared at; the achieved
        # sparsity stays in its own column
        target = rnd.get("target_sparsity")
        row["pruning.target_sparsity"] = target if target is not None else rnd.get("sparsity")
        achieved = 1.0 - rnd["sparsity"] if rnd.get("sparsity") is not None else None
        row["remaining"] = 1.0 - target if target is not None else rnd.get("remaining", achieved)
        if isinstance(rnd.get("fid"), (int, float)) and dense:
            row["fid_vs_dense"] = rnd["fid"] / dense
        rows.append(row)
    return rows


def int8_row(record: dict[str, Any]) -> dict[str, Any] | None:
    """The `+int8` row of a run whose export quantized its compact generator and scored it: the int8 file's
    scores (the run's scorer, same latents), its FID / dense, file size and ONNX Runtime latency at one
    thread (its best form); None for other runs."""
    if not record.get("completed") or not isinstance(record.get("export.int8.metrics.fid"), (int, float)):
        return None
    prefix = "export.int8.metrics."
    row = {k: v for k, v in record.items() if not k.startswith(("metrics.", "export.compact.", "export.speedup"))}
    row.update({"metrics." + k[len(prefix):]: v for k, v in record.items() if k.startswith(prefix)})
    row["export.compact.latency_ms"] = record.get("export.int8.latency_ms_1_thread")
    row["export.compact.file_kb"] = record["export.int8.file_bytes"] / 1024
    row["int8_speedup"] = record.get("export.int8.speedup_vs_best_fp32_1_thread")  # < 1: int8 is slower here
    row["overrides"] = {**record["overrides"], "+int8": "int8"}
    row.pop("fid_vs_dense", None)
    _derive(row)
    return row


def load_runs(root: str | Path, variants: bool = True) -> list[dict[str, Any]]:
    """Every metrics.json under `root` (completed, failed, interrupted; train and eval), sorted by path.
    A file that is not JSON is a failed point, not a crash of the table. `variants`: a run's `+int8` row too."""
    records = []
    for path in sorted(Path(root).rglob("metrics.json")):
        try:
            records.append(load_record(path))
            records += [row for row in [int8_row(records[-1])] if row is not None and variants]
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            records.append({"path": str(path.parent), "kind": "train", "status": "failed", "detail": f"unreadable metrics.json ({err})",
                            "completed": False, "seed_list": [], "overrides": {}, "config_id": {}, "rounds": []})
    shared_paths(records)
    return records


def shared_paths(records: list[dict[str, Any]]) -> None:
    """A path that runs of different seeds all name as it is (one dense checkpoint for every seed) is not a
    per-seed path: those runs keep it literally in their identity (`_seed_free` took the seed's own number in it,
    say seed0/, for a placeholder in the run of that seed only)."""
    seeds: dict[tuple[str, str, str], set[Any]] = {}
    for r in records:
        for field, literal in (r.get("literal_id") or {}).items():
            for key, value in literal.items():
                seeds.setdefault((field, key, value), set()).update(r["seed_list"])
    for r in records:
        for field, literal in (r.get("literal_id") or {}).items():
            for key, value in literal.items():
                if r[field].get(key) != value and len(seeds[(field, key, value)]) > 1:
                    r[field][key] = value
