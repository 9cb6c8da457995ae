"""The floors of the house: nothing imports upward (every import, function-local ones included).

train/evaluate -> compress -> deploy -> pruning -> {metrics, reporting, distill} -> {data, run, models}
-> {fileio, generator, masks}. A module may import its own package and anything on a lower floor.
"""

import ast
from pathlib import Path

import prunegen

ROOT = Path(prunegen.__file__).parent
FLOORS = {
    "fileio": 0, "generator": 0, "masks": 0, "choices": 0,
    "data": 1, "run": 1, "models": 1,
    "metrics": 2, "reporting": 2, "distill": 2,
    "pruning": 3,
    "deploy": 4,
    "compress": 5,
    "train": 6, "evaluate": 6, "export": 6, "runs": 6,
}


def room(module: str) -> str:
    """'prunegen.pruning.callback' -> 'pruning'."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    """The prunegen modules `path` imports, wherever in the file the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prunegen.") and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("prunegen."))
    return found


def back_arrows() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("__init__.py", "configs"):
            continue
        here = rel.parts[0].removesuffix(".py")
        for target in imports(path):
            there = room(target)
            if there != here and FLOORS[there] >= FLOORS[here] > 0:  # the foundation's modules may use each other
                bad.append(f"{rel} ({here}, floor {FLOORS[here]}) imports {target} ({there}, floor {FLOORS[there]})")
    return bad


def test_every_room_has_a_floor():
    rooms = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")} - {"__init__"}
    assert rooms <= set(FLOORS), f"rooms without a floor: {rooms - set(FLOORS)}"


def test_nothing_imports_upward():
    assert back_arrows() == []


def test_the_walker_sees_local_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from prunegen.pruning.masks import x\n    import prunegen.deploy.onnx\n")
    assert imports(f) == {"prunegen.pruning.masks", "prunegen.deploy.onnx"}


def test_check_choice_names_the_key_and_the_nearest_option():
    import pytest

    from prunegen.choices import check_choice

    check_choice("pruning.scope", "layer", ("layer", "global"))
    with pytest.raises(ValueError, match=r"pruning.scope must be one of \('layer', 'global'\), got 'globl' \(did you mean 'global'\?\)"):
        check_choice("pruning.scope", "globl", ("layer", "global"))
