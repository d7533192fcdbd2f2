"""The course's shared library, one module per concern (README.md's map); ``utils/world/`` holds the offline
world's build tools (``make data``, ``make model``). Importing ``utils`` prepares the Hugging Face libraries for
``$COURSE_PROFILE`` before any of them loads."""

import getpass
import os
import tempfile
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning, not to steal a small machine's CPU. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from utils import config  # noqa: E402
from utils.config import PROFILES, get_profile, set_seed  # noqa: E402


def offline_hf_home() -> Path:
    """The offline profiles' Hugging Face cache: this user's folder in the system's temporary folder (outside
    ``results/``, which may be read-only, and ``~/.cache/huggingface``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's unnamed user)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"flan-course-hf-{user}"


def prepare_hugging_face() -> None:
    """Set what the Hugging Face libraries read once, on import: ``HF_HOME`` and online or offline mode.

    Offline profiles cache in :func:`offline_hf_home` unless the user set ``HF_HOME``; ``full`` uses the
    user's own cache (one inherited from an offline run is dropped). Also run by ``python -m utils.train``."""
    profile = PROFILES.get((os.environ.get("COURSE_PROFILE") or "tiny").strip())
    if profile is None:  # get_profile() explains the valid names when the notebook asks for the profile
        return
    ours = str(offline_hf_home())
    if profile.offline:
        os.environ.setdefault("HF_HOME", ours)
    elif os.environ.get("HF_HOME") == ours:
        del os.environ["HF_HOME"]
    config.decide_access(profile.name, profile.offline)


prepare_hugging_face()

__all__ = ["get_profile", "set_seed"]
