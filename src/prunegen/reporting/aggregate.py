"""Grouping a sweep's records into table rows: runs that differ only by seed are one row (mean ± std over
distinct seeds); every other difference, in the overrides or in the composed config, shows in the label."""

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

MISSING = "<unset>"
SPARSITY_KEYS = ("pruning.final_sparsity", "pruning.target_sparsity", "pruning.rounds")
GROUP_CHOICES = ("experiment", "model", "data", "pruning", "distill", "metrics")


def identity(record: dict[str, Any]) -> tuple:
    """What the run is, without its seed."""
    return (tuple(sorted(record["overrides"].items())), tuple(sorted(record["config_id"].items())))


def _short(value: str) -> str:
    """A long path keeps its last three parts."""
    parts = value.split("/")
    return value if len(value) <= 40 or len(parts) <= 3 else ".../" + "/".join(parts[-3:])


def _differing(dicts: list[dict[str, str]]) -> list[str]:
    """Keys whose value (or absence) is not the same in every dict."""
    keys = sorted({k for d in dicts for k in d})
    return [k for k in keys if len({d.get(k, MISSING) for d in dicts}) > 1]


def labels(ids: list[tuple], always: tuple[str, ...] = ()) -> dict[tuple, str]:
    """A label per identity from every override that differs between them (absent counts as a value);
    when two identities share their overrides, the config keys that differ between them are added."""
    overrides = {i: dict(i[0]) for i in ids}
    varying = sorted(set(_differing(list(overrides.values()))) | {k for o in overrides.values() for k in always if k in o})
    varying.sort(key=lambda k: k.startswith("+"))  # a variant of a run (`+int8`) is named after it
    out = {i: " ".join(k if k.startswith("+") else f"{k}={_short(o[k])}" for k in varying if k in o) for i, o in overrides.items()}
    by_label: dict[str, list[tuple]] = {}
    for i, text in out.items():
        by_label.setdefault(text, []).append(i)
    for text, same in by_label.items():
        if len(same) > 1:
            configs = {i: dict(i[1]) for i in same}
            extra = _differing(list(configs.values()))
            for i in same:
                more = " ".join(f"{k}={_short(configs[i].get(k, MISSING))}" for k in extra)
                out[i] = f"{text} [config: {more}]".strip()
    for i, o in overrides.items():
        if not out[i]:
            chosen = [f"{k}={o[k]}" for k in GROUP_CHOICES if k in o]
            out[i] = " ".join(chosen) or "(defaults)"
    return out


def method_name(record: dict[str, Any]) -> str:
    """A readable name for a run's method: `dense`, or criterion, granularity and scope of its pruning,
    `IMP` for runs with rounds, `+ distillation` when it fine-tunes from a teacher."""
    method = record.get("pruning.method") or _configured_method(record)
    if record.get("kind") == "eval":
        return "eval"
    if not method and not record.get("rounds") and record.get("round") is None:
        return "dense"
    if method == "lightning_modelpruning":
        return "Lightning ModelPruning"
    if record.get("round") is not None:
        return _rounds_name(record)
    granularity, _, scope = str(method or "").partition("_")  # structured_layer -> structured (layer)
    criterion = record.get("pruning.criterion") or _config(record, "pruning.criterion")
    name = " ".join(p for p in (criterion, granularity) if p) + (f" ({scope})" if scope else "")
    distill = record["overrides"].get("distill")
    if distill not in (None, "none", "null") or (distill is None and any(k.startswith("distill.") for k in record["config_id"])):
        name += " + distillation"
    return name


def _config(record: dict[str, Any], key: str) -> Any:
    text = record["config_id"].get(key)
    return json.loads(text) if text is not None else None


def _configured_method(record: dict[str, Any]) -> str | None:
    """A run that failed before it wrote its pruning record: its method from its composed config."""
    if _config(record, "pruning._target_") is None:
        return None
    return "_".join(str(p) for p in (_config(record, "pruning.granularity"), _config(record, "pruning.scope")) if p) or "pruned"


def _rounds_name(record: dict[str, Any]) -> str:
    """GAN-LTH's three lines: IMP, random pruning to the same sparsities, the random ticket (IMP's masks on
    re-initialised weights)."""
    protocol = record.get("pruning.protocol")  # imp | random_pruning | random_ticket (pruning/imp.py)
    ticket = record["overrides"].get("pruning.ticket_masks", json.loads(record["config_id"].get("pruning.ticket_masks", "null")))
    if protocol == "random_ticket" or (protocol is None and ticket not in (None, "null")):
        return "random ticket (IMP masks, re-initialised)"
    criterion = record.get("pruning.criterion") or json.loads(record["config_id"].get("pruning.criterion", "null"))
    if protocol == "random_pruning" or (protocol is None and criterion == "random"):
        return "random pruning"
    scope = str(record.get("pruning.method") or "").rpartition("_")[2]
    return "IMP (" + ", ".join(p for p in (criterion, scope) if p) + ")"


def series_of(record: dict[str, Any]) -> tuple:
    """The identity without the sparsity: the points of one curve."""
    overrides = tuple((k, v) for k, v in sorted(record["overrides"].items()) if k not in SPARSITY_KEYS)
    config = tuple((k, v) for k, v in sorted(record["config_id"].items()) if k not in SPARSITY_KEYS)
    return overrides, config


def series_names(records: list[dict[str, Any]]) -> dict[tuple, str]:
    """Each series is named by its method; series that share a method name get the overrides that tell
    them apart (shortened to their last key part)."""
    first = {}
    for r in records:
        first.setdefault(series_of(r), r)
    names = {s: method_name(r) for s, r in first.items()}
    for name in set(names.values()):
        same = [s for s, n in names.items() if n == name]
        if len(same) > 1:
            for s, extra in _tell_apart([dict(s[0]) for s in same]).items():
                names[same[s]] = f"{name} ({extra})" if extra else name
    return names


def _tell_apart(overrides: list[dict[str, str]]) -> dict[int, str]:
    """Few overrides that name each of these series apart, taken greedily: those every series sets first,
    paths last, each kept only if it splits series that were still named alike."""
    def texts(keys: list[str]) -> dict[int, str]:
        return {i: ", ".join(f"{k.split('.')[-1]}={_short(o[k])}" for k in keys if k in o) for i, o in enumerate(overrides)}

    candidates = sorted(_differing(overrides), key=lambda k: (not all(k in o for o in overrides), "ckpt" in k, k))
    chosen: list[str] = []
    for key in candidates:
        if len(set(texts(chosen).values())) == len(overrides):
            break
        if len(set(texts(chosen + [key]).values())) > len(set(texts(chosen).values())):
            chosen.append(key)
    return texts(chosen)


def seed_key(record: dict[str, Any]) -> str:
    """The sample a record belongs to: its seed(s) ('0', or '0,1,2' for an evaluation over seeds), else its folder."""
    return ",".join(map(str, record["seed_list"])) or record["path"]


def seed_mean(records: list[dict[str, Any]], value_of: Callable[[dict[str, Any]], float | None]) -> dict[str, Any]:
    """{mean, std, per_seed} over distinct seeds: the runs of one seed are averaged first (they are one sample).
    The one seed mean of the tables and of `prunegen-reproduce`."""
    per_seed: dict[str, list[float]] = {}
    for r in records:
        value = value_of(r)
        if value is not None:
            per_seed.setdefault(seed_key(r), []).append(float(value))
    values = {seed: statistics.fmean(v) for seed, v in sorted(per_seed.items())}
    if not values:
        return {"mean": None, "std": None, "per_seed": {}}
    spread = statistics.stdev(values.values()) if len(values) > 1 else None
    return {"mean": statistics.fmean(values.values()), "std": spread, "per_seed": values}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _mean_std(members: list[dict[str, Any]], key: str) -> tuple[float | None, float | None]:
    """Mean and std over distinct seeds of one column; an evaluation over several seeds brings its own std."""
    over = seed_mean(members, lambda m: _number(m.get(key)))
    if len(over["per_seed"]) == 1 and len(members) == 1 and key.startswith("metrics."):  # an eval over several seeds
        std = members[0].get(f"metrics.over_seeds.{key[len('metrics.'):]}.std")
        return over["mean"], std if isinstance(std, (int, float)) else None
    return over["mean"], over["std"]


def make_row(label: str, series: str, members: list[dict[str, Any]], columns: list[tuple]) -> dict[str, Any]:
    """One table row from the records of one configuration (and round, and status)."""
    first = members[0]
    seeds = {s for m in members for s in m["seed_list"]}
    row: dict[str, Any] = {"run": label, "series": series, "kind": first["kind"], "status": first["status"],
                           "detail": first.get("detail", ""), "attempts": sum(m.get("earlier_attempts", 0) for m in members),
                           "seeds": len(seeds), "runs": len(members), "completed": first["completed"], "round": first.get("round"),
                           "samples": first.get("samples"), "extractor": first.get("metrics.extractor"),
                           "pruned": bool(first.get("pruning.method")) or first.get("round") is not None,
                           "paths": [m["path"] for m in members],
                           "invalid": any(m.get("metrics.valid") is False for m in members)}
    for name, key, *_ in columns:
        row[name], row[f"{name} std"] = _mean_std(members, key) if first["completed"] else (None, None)
    if row.get("remaining") is None and first.get("round") is None:  # a failed point: its target, if known
        target = first.get("pruning.target_sparsity")
        row["target sparsity"] = row.get("target sparsity") or target
    return row


def aggregate(records: list[dict[str, Any]], columns: list[tuple]) -> list[dict[str, Any]]:
    """Rows: completed runs grouped by identity (and round for IMP runs); failed and interrupted runs
    grouped by identity and status, with no scores. Eval records are rows of their own kind."""
    from prunegen.reporting.runs import expand_rounds, link_dense

    expanded = [row for r in records for row in (expand_rounds(r) if r["completed"] else [r])]
    link_dense(expanded)
    named = series_names([r for r in expanded if r["kind"] == "train"])
    rows = []
    for kind in ("train", "eval"):
        mine = [r for r in expanded if r["kind"] == kind]
        if kind == "eval":  # each evaluation is its own row, named by what it scored
            for r in mine:
                source = r.get("source.ckpt_path") or r.get("source.fake_dir") or Path(r["path"]).name
                kept = {k: v for k, v in r["overrides"].items() if k not in ("ckpt_path", "fake_dir")}
                r["overrides"] = {**kept, "source": _short(str(source))}
        names = labels(sorted({identity(r) for r in mine}), always=("source",) if kind == "eval" else ())
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for r in mine:
            key = (identity(r), r.get("round"), r["status"], r.get("detail")) if kind == "train" else (r["path"],)
            groups.setdefault(key, []).append(r)
        for members in groups.values():
            first = members[0]
            series = named.get(series_of(first), "eval") if kind == "train" else "eval"
            label = first.get("label") or names[identity(first)]
            rows.append(make_row(label + (" +int8" if first.get("label") and "+int8" in first["overrides"] else ""),
                                 series, members, columns))
    fewer_macs(rows)
    return sorted(rows, key=order)


def fewer_macs(rows: list[dict[str, Any]]) -> None:
    """`x fewer MACs` against the sweep's dense run (one MACs count among the unpruned completed rows)."""
    dense = {r["MACs"] for r in rows if r["kind"] == "train" and r.get("completed") and not r["pruned"] and r.get("MACs")}
    if len(dense) != 1:
        return
    base = dense.pop()
    for r in rows:
        if r.get("MACs"):
            r["x fewer MACs"] = base / r["MACs"]


def order(row: dict[str, Any]) -> tuple:
    done = row.get("completed", False)
    remaining = row.get("remaining")
    return (row["kind"] != "train", row["pruned"], -(remaining if remaining is not None else 1.0), not done, row["run"])
