"""A paper's numbers to put beside ours: a YAML/JSON file of rows keyed by weights remaining or sparsity.

    name: GAN-LTH
    citation: Chen et al., GANs Can Play Lottery Tickets Too, ICLR 2021
    metric: fid                 # fid | kid_mean | is_mean | class_coverage (a metrics.* key of ours)
    extractor: inception        # its feature space: its column never mixes with ours
    x: remaining                # optional: which of remaining / sparsity keys the rows when they carry both
    rows:                       # each row: remaining or sparsity (fractions), the metric, optionally <metric>_std
      - {remaining: 1.0, fid: 15.7}
      - {remaining: 0.8, fid: 14.2}
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prunegen.choices import check_choice

METRICS = {"fid": "FID", "kid_mean": "KID", "is_mean": "IS", "class_coverage": "classes"}
LOWER_IS_BETTER = {"fid", "kid_mean"}
TOLERANCE = 0.006  # |remaining - reference remaining| that counts as the same point (papers round to 0.1%)


@dataclass
class Reference:
    name: str
    metric: str
    points: list[tuple[float, float, float | None]]  # (remaining, value, std)
    citation: str = ""
    extractor: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str:
        return f"{self.name} {METRICS[self.metric]}" + (f" ({self.extractor})" if self.extractor else "")

    @property
    def better(self) -> str:
        return "min" if self.metric in LOWER_IS_BETTER else "max"

    def at(self, remaining: float | None) -> tuple[float, float | None] | None:
        """The reference's (value, std) at this fraction of weights remaining, or None."""
        if remaining is None:
            return None
        near = [(abs(r - remaining), v, s) for r, v, s in self.points if abs(r - remaining) <= TOLERANCE]
        return min(near)[1:] if near else None

    def dense(self) -> float | None:
        hit = self.at(1.0)
        return hit[0] if hit else None


def _fraction(row: dict[str, Any], path: Path, i: int, x: str | None) -> float:
    """The row's fraction of weights remaining, from `x` (remaining | sparsity) or the one of them it has."""
    if x is None and ("remaining" in row) == ("sparsity" in row):
        raise ValueError(f"{path}: rows[{i}] needs exactly one of 'remaining' or 'sparsity' (or set x:), got {sorted(row)}")
    key = x or ("remaining" if "remaining" in row else "sparsity")
    if key not in row:
        raise ValueError(f"{path}: rows[{i}] has no {key!r} (x: {key}): {row}")
    value = float(row[key]) if key == "remaining" else 1.0 - float(row[key])
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{path}: rows[{i}] weights remaining {value} is not a fraction in (0, 1] (write 0.8, not 80)")
    return value


def load_reference(path: str | Path) -> Reference:
    """Read and check a reference file; a ValueError names the file and the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"reference file {path} does not exist")
    data = yaml.safe_load(path.read_text())  # JSON is YAML
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a reference file is a mapping with name, metric and rows")
    name = data.get("name") or data.get("paper")  # `paper: <title>` names it when there is no short name
    missing = [k for k in ("metric", "rows") if k not in data] + ([] if name else ["name"])
    if missing:
        raise ValueError(f"{path}: missing {missing}")
    x = data.get("x")
    check_choice(f"{path}: x", x, (None, "remaining", "sparsity"))
    metric = data["metric"]
    check_choice(f"{path}: metric", metric, sorted(METRICS))
    points = []
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, dict) or metric not in row:
            raise ValueError(f"{path}: rows[{i}] has no {metric!r} value: {row}")
        points.append((_fraction(row, path, i, x), float(row[metric]), row.get(f"{metric}_std")))
    citation = data.get("citation") or ", ".join(str(data[k]) for k in ("paper", "source") if data.get(k))
    rest = {k: v for k, v in data.items() if k not in ("name", "metric", "rows", "citation", "extractor")}
    return Reference(str(name), metric, sorted(points, reverse=True), str(citation), str(data.get("extractor", "")), rest)


def add_reference(rows: list[dict[str, Any]], reference: Reference) -> list[dict[str, Any]]:
    """Put the reference's value beside every training row at the same weights remaining, and add a row
    for each reference point that no row of ours reaches, so the paper's whole curve is in the table."""
    column, used = reference.column, set()
    for row in rows:
        hit = reference.at(row.get("remaining")) if row["kind"] == "train" and row.get("completed") else None
        row[column], row[f"{column} std"] = hit if hit else (None, None)
        if hit:
            used.add(next(r for r, v, s in reference.points if abs(r - row["remaining"]) <= TOLERANCE and v == hit[0]))
    for remaining, value, std in reference.points:
        if remaining not in used:
            rows.append({"run": f"({reference.name} only)", "series": reference.name, "kind": "train",
                         "status": "reference", "completed": False,
                         "seeds": 0, "runs": 0, "round": None, "pruned": remaining < 1.0, "remaining": remaining,
                         "remaining std": None, "extractor": reference.extractor, "samples": None, "paths": [],
                         column: value, f"{column} std": std})
    return rows
