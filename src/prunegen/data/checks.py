"""What a folder of images holds, checked before torch is imported: every class folder has images, every
class has enough of them for the held-out split the scores need. No torch here."""

import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger("prunegen")

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
HELD_OUT_PER_CLASS = 1  # images of each class expected in the held-out split, where the classifier's accuracy is measured


def images_under(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, hidden files and folders skipped), sorted."""
    return sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in EXTENSIONS and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def scan_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """(files, labels, class names). Images in sub-folders are labelled by sub-folder (sorted names);
    images directly in `root` are unlabelled (class names empty, labels 0). Both at once is an error, and
    so is a class folder without images (it would silently shift every label after it)."""
    if not root.is_dir():
        raise FileNotFoundError(f"data.root: {root} is not a folder")
    loose = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = {d.name: images_under(d) for d in subdirs}
    empty = [name for name, files in per_class.items() if not files]
    if empty and (loose or len(empty) < len(per_class)):
        raise ValueError(
            f"data.root: class folder{'s' if len(empty) > 1 else ''} {', '.join(str(root / n) for n in empty)} "
            f"{'have' if len(empty) > 1 else 'has'} no images ({', '.join(EXTENSIONS)}): add images, or move "
            f"{'them' if len(empty) > 1 else 'it'} out of {root} (every sub-folder is a class)"
        )
    per_class = {name: files for name, files in per_class.items() if files}
    if loose and per_class:
        raise ValueError(
            f"data.root: {root} has images both directly inside ({loose[0].name}, ...) and in sub-folders "
            f"({', '.join(per_class)}); put all of them in class sub-folders, or none"
        )
    if not loose and not per_class:
        raise ValueError(f"data.root: no images ({', '.join(EXTENSIONS)}) in {root}")
    if loose:
        return loose, [0] * len(loose), []
    classes = list(per_class)
    files = [f for name in classes for f in per_class[name]]
    labels = [i for i, name in enumerate(classes) for _ in per_class[name]]
    return files, labels, classes


def class_counts(labels: list[int], classes: list[str]) -> dict[str, int]:
    return {name: labels.count(i) for i, name in enumerate(classes)}


def check_class_sizes(counts: dict[str, int], held_out_fraction: float, allow: bool, root: Any = "data.root") -> None:
    """Each class needs enough images for ~HELD_OUT_PER_CLASS of them to land in the held-out split; a
    smaller one is refused with the numbers, or, with `data.allow_small_classes=true`, logged."""
    if len(counts) < 2:  # unlabelled, or one class: no classifier is trained on its labels
        return
    fraction = max(held_out_fraction, 1e-9)
    need = math.ceil(HELD_OUT_PER_CLASS / fraction)
    small = {name: n for name, n in counts.items() if n < need}
    if not small:
        return
    listed = ", ".join(f"{name}: {n}" for name, n in sorted(small.items(), key=lambda kv: kv[1])[:8])
    message = (
        f"{root}: {len(small)} of {len(counts)} classes have fewer than {need} images ({listed}{', ...' if len(small) > 8 else ''}); "
        f"with data.val_fraction + data.test_fraction = {held_out_fraction:g} each class needs >= {need} for "
        f"~{HELD_OUT_PER_CLASS} held-out images, on which the domain classifier's accuracy and the scores rest"
    )
    if not allow:
        raise ValueError(message + ". Add images, raise data.test_fraction, or set data.allow_small_classes=true to go on with a warning")
    log.warning(message + " (data.allow_small_classes=true: going on)")


def check_image_folder(data: Any) -> None:
    """The config-only checks of an `image_folder` datamodule (`data.*`), before torch: scan, refuse empty
    class folders and too-small classes, and report the images per class and the split sizes."""
    if not data or not str(data.get("_target_", "")).endswith("ImageFolderDataModule") or data.get("root") in (None, "???"):
        return
    root = Path(str(data.get("root")))
    files, labels, classes = scan_folder(root)
    val, test = float(data.get("val_fraction", 0.0) or 0.0), float(data.get("test_fraction", 0.1) or 0.0)
    held_out = val + test
    counts = class_counts(labels, classes)
    n_val, n_test = int(len(files) * val), int(len(files) * test)
    per_class = ", ".join(f"{k}: {v}" for k, v in list(counts.items())[:10]) + (", ..." if len(counts) > 10 else "")
    log.info(f"data.root {root}: {len(files)} images, {len(classes) or 'no'} classes{f' ({per_class})' if counts else ''}; "
             f"splits: train {len(files) - n_val - n_test}, val {n_val}, test {n_test}")
    check_class_sizes(counts, held_out, bool(data.get("allow_small_classes", False)), f"data.root {root}")
