"""Talking to the Hugging Face Hub without ever hanging on a dead network.

The ``full`` profile loads models and data sets from the Hub. With no network, the libraries can wait on
time-outs; here we check reachability once (a few seconds at most) and otherwise switch them to the
local cache, so a missing download fails fast with advice instead of hanging.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

HUB_HOST = "huggingface.co"

ADVICE = (
    "The Hugging Face Hub cannot be reached and nothing usable is cached. Either run offline with "
    "COURSE_PROFILE=tiny (everything is in data/), or warm the cache on a machine with network, e.g. "
    "`python -c \"from utils import data, modeling; modeling.load_model(); data.load_target()\"` with "
    "COURSE_PROFILE=full, then copy ~/.cache/huggingface over."
)


class HubUnavailableError(RuntimeError):
    """The Hub is unreachable and the requested files are not in the local cache."""


def is_local(name_or_path: str) -> bool:
    """True when ``name_or_path`` is a folder on disk rather than a Hub id."""
    return Path(name_or_path).expanduser().exists()


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connection to the Hub; False when offline mode is forced by the environment."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((os.environ.get("COURSE_HUB_HOST", HUB_HOST), 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def prepare_hub_access() -> bool:
    """Set the Hub libraries to offline mode when the Hub is unreachable. Returns True if online."""
    online = hub_reachable()
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
        try:  # huggingface_hub reads the variable at import time; keep its constant in step
            import huggingface_hub.constants as hub_constants

            hub_constants.HF_HUB_OFFLINE = True
        except Exception:  # pragma: no cover - older/newer layouts
            pass
    return online


def unavailable(what: str, error: Exception) -> HubUnavailableError:
    """The error to raise when ``what`` could not be loaded from the Hub or the cache."""
    return HubUnavailableError(f"Could not load {what!r}: {error.__class__.__name__}. {ADVICE}")
