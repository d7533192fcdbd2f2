"""What a course run measured (``results/<profile>/metrics.json``) and the fingerprints behind cache keys.

Each notebook saves its section to ``sections/``; ``metrics.json`` is rebuilt from them. Writes are atomic."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock

from utils.config import Profile

_SEAL = "_sealed"  # the key under which a sealed file records its content's fingerprint (:func:`read_sealed`)


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
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _clean(value):
    """JSON-ready values: NumPy numbers to Python, NaN refused (a score must be a number)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    value = value.item() if hasattr(value, "item") and not isinstance(value, str) else value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("A metric is NaN or infinite; fix the computation before saving it.")
    return round(value, 6) if isinstance(value, float) else value


def atomic_write_json(path: str | Path, obj, sealed: bool = False) -> Path:
    """Atomically write ``obj`` as key-sorted JSON; ``sealed`` adds its fingerprint (:func:`read_sealed`)."""
    obj = _clean(obj)
    obj = {**obj, _SEAL: of_json(obj)} if sealed else obj
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_sealed(path: str | Path) -> dict | None:
    """A sealed file's object without its seal; None when it is missing, not JSON, unsealed or changed."""
    content, intact = _unsealed(read_json_object(Path(path)) or {})
    return content if intact else None


def _unsealed(value: dict) -> tuple[dict, bool | None]:
    """``value`` without its seal, and whether the seal matches the rest (None: it has no seal)."""
    content = {key: item for key, item in value.items() if key != _SEAL}
    return content, (value[_SEAL] == of_json(content) if _SEAL in value else None)


@contextlib.contextmanager
def locked(lock_path: str | Path):
    """Hold an exclusive lock on ``lock_path`` (across processes, on every platform) during the block."""
    lock_path = Path(lock_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        acquired = FileLock(lock_path).acquire()
    except OSError as error:
        raise PermissionError(f"Cannot write the lock file {lock_path} ({error.strerror or error}): the "
                              "results folder is not writable. Make it writable, or set "
                              "COURSE_RESULTS_DIR.") from error
    with acquired:  # released when the block ends
        yield


def save_metrics(section: str, values: dict, profile: Profile) -> Path:
    """Save one notebook's ``section`` and rebuild ``metrics.json``; returns its path."""
    folder = profile.results_dir
    with locked(folder / ".metrics.lock"):  # creates the folder
        atomic_write_json(folder / "sections" / f"{section}.json", values, sealed=True)
        return atomic_write_json(folder / "metrics.json", _merged_sections(folder))


def saved_section(section: str, profile: Profile) -> dict | None:
    """A lesson's saved ``section`` for another lesson to reuse; None unless it is as the lesson saved it."""
    return read_sealed(profile.results_dir / "sections" / f"{section}.json")


def load_metrics(profile: Profile) -> dict:
    """All saved under the profile ({} if nothing); a broken ``metrics.json`` is rebuilt from sections."""
    folder = profile.results_dir
    path = folder / "metrics.json"
    metrics = read_json_object(path)
    if metrics is not None or not path.exists():
        return metrics or {}
    print(f"Note: {path} was not valid JSON; rebuilt it from {folder / 'sections'}.", file=sys.stderr)
    merged = _merged_sections(folder)
    with contextlib.suppress(OSError), locked(folder / ".metrics.lock"):  # read-only folder: left unsaved
        atomic_write_json(path, merged)
    return merged


def read_json_object(path: Path) -> dict | None:
    """The JSON object in ``path``; None when the file is missing or not UTF-8 JSON holding an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _merged_sections(folder: Path) -> dict:
    """Every valid section in ``folder/sections``; an invalid one is kept aside as ``<name>.json.corrupt``."""
    merged = {}
    for path in sorted((folder / "sections").glob("*.json")):
        values = read_json_object(path)
        if values is None:
            kept = path.with_name(path.name + ".corrupt")
            with contextlib.suppress(OSError):
                os.replace(path, kept)
            print(f"Note: {path} was not valid JSON, so metrics.json leaves its section {path.stem!r} out "
                  f"(the file is kept as {kept.name if kept.exists() else path.name}). Run the lesson that "
                  f"saves '{path.stem}' again to measure it anew.", file=sys.stderr)
            continue
        merged[path.stem], intact = _unsealed(values)
        if intact is False:
            print(f"Note: {path} was changed after its lesson saved it: metrics.json shows it as it is now, "
                  "but no lesson reuses it (run its lesson again to measure it anew).", file=sys.stderr)
    return merged


def digest(chunks: Iterable[str | bytes], length: int | None = 16) -> str:
    """The hex SHA-256 of ``chunks`` fed in order (text as UTF-8), its first ``length`` digits (None: all)."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk.encode() if isinstance(chunk, str) else chunk)
    return hasher.hexdigest()[:length]


def of_json(obj, length: int | None = 16) -> str:
    """:func:`digest` of ``obj`` as JSON with sorted keys (equal objects, equal fingerprints)."""
    return digest([json.dumps(obj, sort_keys=True)], length)
