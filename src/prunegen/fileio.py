"""Files: one atomic writer (JSON, torch payloads) and one content hash (of tensors, records and file lists).

No torch import at module level: the entry points write records before torch is loaded.
"""

import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The signals that stop a run (run/lifecycle.py): held back while a file is written, delivered once it is whole.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """A stop signal that arrives mid-write waits until the block ends: a handler that raises inside torch.save
    (submitit's requeue, our RunInterrupted) broke its zip writer ("unexpected pos") and lost the checkpoint."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """`write(file)` into a temp file beside `path`, then rename: readers never see half a file.

    The file gets the permissions of any new file (0666 less the umask), not mkstemp's 0600, so the
    user's group reads records and shared caches like every other file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with signals_deferred():
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


CACHE_SETTING = "paths.cache_dir (default .cache, or the PRUNEGEN_CACHE environment variable)"


def check_writable(folder: str | Path, setting: str) -> None:
    """Make `folder` (and its parents) and write a probe file there, before any work: a folder that cannot be
    written is reported at once, naming it and the setting that chose it, not after an hour of training."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"{folder} cannot be written ({err.strerror or err}); it was chosen by {setting}: point it at a writable "
            f"folder, e.g. {setting.split()[0]}=/scratch/$USER/prunegen-cache"
        ) from err


def write_json(path: str | Path, obj: Any) -> Path:
    """`obj` as indented JSON (non-JSON values through str), written atomically."""
    return atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, default=str).encode()))


def save_torch(payload: Any, path: str | Path) -> Path:
    """`torch.save(payload)`, written atomically."""
    import torch

    return atomic_write(path, lambda f: torch.save(payload, f))


def _feed(h: "hashlib._Hash", obj: Any) -> None:
    torch = sys.modules.get("torch")  # nothing is a tensor unless torch was imported
    if torch is not None and isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            h.update(f"{key}:".encode())
            _feed(h, value)
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for value in obj:
            _feed(h, value)
        h.update(b"]")
    elif isinstance(obj, bytes):
        h.update(obj)
    else:  # str, numbers, None, paths
        h.update(f"{obj!r};".encode())


def content_hash(*parts: Any) -> str:
    """sha256 (16 hex digits) of tensors (shape, dtype, bytes), mappings (keys and values, in order),
    sequences and plain values. A module's fingerprint is `content_hash(module.state_dict())`."""
    h = hashlib.sha256()
    for part in parts:
        _feed(h, part)
    return h.hexdigest()[:16]


def file_list_hash(files: Iterable[str | Path], root: str | Path) -> str:
    """Identity of a set of files without reading them: names relative to `root`, sizes, modification times."""
    entries = []
    for f in files:
        st = Path(f).stat()
        entries.append((str(Path(f).relative_to(root)), st.st_size, st.st_mtime_ns))
    return content_hash(entries)
