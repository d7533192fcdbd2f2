"""Where a course run keeps what it measured: ``results/<profile>/metrics.json``.

Each notebook saves its own section (``save_metrics("zero_shot", {...}, profile)``) into
``results/<profile>/sections/<section>.json``; ``metrics.json`` is then rebuilt from all sections under a
file lock. Files are written atomically (write to a temporary file, then rename), so a killed run never
leaves a half-written file behind, and notebooks running in parallel never lose each other's sections.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

from filelock import FileLock

from utils.config import Profile


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _clean(value):
    """JSON-ready values: NumPy numbers to Python, NaN refused (a score must be a number)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("A metric is NaN or infinite; fix the computation before saving it.")
        return round(value, 6)
    return value


def atomic_write_json(path: str | Path, obj) -> Path:
    """Atomically write ``obj`` as pretty, key-sorted JSON (so identical runs give identical files)."""
    return atomic_write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def locked(lock_path: str | Path):
    """Hold an exclusive lock on ``lock_path`` (across processes) for the duration of the block.

    ``filelock`` picks the platform's lock (``fcntl`` on Linux and macOS, ``msvcrt`` on Windows).
    """
    lock_path = Path(lock_path)
    lock = FileLock(lock_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as error:
        raise PermissionError(
            f"Cannot write the lock file {lock_path} ({error.strerror or error}): the results folder is not "
            "writable. Make it writable, or set COURSE_RESULTS_DIR to a folder you can write to."
        ) from error
    try:
        yield
    finally:
        lock.release()


def results_dir(profile: Profile) -> Path:
    """``results/<profile>/``, created if needed."""
    folder = profile.results_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_metrics(section: str, values: dict, profile: Profile) -> Path:
    """Save one notebook's ``section`` and rebuild ``metrics.json``; returns its path."""
    folder = results_dir(profile)
    with locked(folder / ".metrics.lock"):
        atomic_write_json(folder / "sections" / f"{section}.json", values)
        merged = {p.stem: json.loads(p.read_text()) for p in sorted((folder / "sections").glob("*.json"))}
        return atomic_write_json(folder / "metrics.json", merged)


def load_metrics(profile: Profile) -> dict:
    """Everything saved so far under the profile (empty when nothing is)."""
    path = results_dir(profile) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}
