"""The course imports and runs where POSIX-only modules are missing (Windows has neither ``fcntl`` nor
``resource``), and its results lock still excludes other processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from utils import course, results

ROOT = Path(__file__).resolve().parents[1]

_WITHOUT_POSIX_MODULES = """
import sys
sys.modules["fcntl"] = None  # as on Windows: `import fcntl` raises ImportError
sys.modules["resource"] = None
import warnings
warnings.simplefilter("ignore")  # filelock says it falls back to a soft lock here (Windows has msvcrt)
from pathlib import Path
from utils import course, results
folder = Path(sys.argv[1])
with results.locked(folder / "x.lock"):
    results.atomic_write_json(folder / "inside.json", {"ok": 1})
print(course.peak_child_memory_mb(), "|", course.peak_memory_text())
"""


def _python(code: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_results_and_course_import_and_work_without_fcntl_and_resource(tmp_path):
    process = _python(_WITHOUT_POSIX_MODULES, str(tmp_path))
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip() == "None | not measured on this platform"
    assert (tmp_path / "inside.json").exists()


def test_peak_memory_is_measured_in_mb_where_resource_exists():
    assert _python("bytearray(300 * 2**20)").returncode == 0  # a child that holds 300 MB
    peak = course.peak_child_memory_mb()
    assert 300 <= peak < 300 * 1024  # MB: a KiB/byte mix-up would be off by a factor of 1024
    assert course.peak_memory_text() == f"{peak:.0f} MB"


_TRY_LOCK = """
import sys
from filelock import FileLock, Timeout
try:
    FileLock(sys.argv[1]).acquire(timeout=0.5)
except Timeout:
    print("busy")
else:
    print("free")
"""


def test_the_results_lock_excludes_other_processes(tmp_path):
    lock = tmp_path / ".metrics.lock"
    with results.locked(lock):
        assert _python(_TRY_LOCK, str(lock)).stdout.strip() == "busy"
    assert _python(_TRY_LOCK, str(lock)).stdout.strip() == "free"
