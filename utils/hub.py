"""Talking to the Hugging Face Hub without ever hanging on a dead network.

The ``full`` profile loads models and data sets from the Hub. With no network, the libraries can wait on
time-outs. So whether a process uses the Hub is decided once, when ``utils`` is imported and before any Hugging
Face library is (:func:`decide_access`): an offline profile never does; the ``full`` one checks reachability
(a few seconds at most) and otherwise starts the libraries in offline mode, on the local cache, so a missing
download fails fast with advice instead of hanging.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

_HUB_HOST = "huggingface.co"

_ADVICE = (
    "The Hugging Face Hub cannot be reached and nothing usable is cached. Either run offline with "
    "COURSE_PROFILE=tiny (everything is in data/), or warm the cache on a machine with network with "
    "`COURSE_PROFILE=full python -m utils.modeling` (model, tokenizer, target and every probe), then copy "
    "~/.cache/huggingface over."
)


#: What the Hugging Face libraries read, once, when imported, to know whether they may use the network.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
#: The profile whose decision those variables hold when the course set them (unset: they are the user's own).
DECIDED_FOR = "FLAN_COURSE_HUB_DECIDED_FOR"


class HubUnavailableError(RuntimeError):
    """The Hub is unreachable and the requested files are not in the local cache."""


def is_local(name_or_path: str) -> bool:
    """True when ``name_or_path`` is a folder on disk rather than a Hub id."""
    return Path(name_or_path).expanduser().exists()


def _hub_url() -> str:
    """The address probed for reachability: ``HF_ENDPOINT`` (a mirror) if set, else the Hub (or ``COURSE_HUB_HOST``)."""
    if os.environ.get("HF_ENDPOINT"):
        return os.environ["HF_ENDPOINT"].rstrip("/") + "/"
    return f"https://{os.environ.get('COURSE_HUB_HOST', _HUB_HOST)}/"


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick HTTP request to the Hub, through the proxy the libraries would use; False when offline mode is
    forced by the environment.

    A bare TCP connection is not enough: a proxy or firewall that accepts connections but blocks the Hub would
    pass it, and every download would then retry for a minute before failing. Only an answer that is not an
    error (status < 400) counts as reachable.
    """
    if _offline_variable_set():
        return False
    import httpx

    try:
        response = httpx.head(_hub_url(), timeout=timeout, follow_redirects=True)
    except (httpx.HTTPError, OSError):
        return False
    return response.status_code < 400


def _offline_variable_set() -> bool:
    """True when ``HF_HUB_OFFLINE`` says offline (set by :func:`decide_access` or by the user)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def decide_access(profile_name: str, offline_profile: bool) -> bool:
    """Decide whether this process uses the Hub, before any Hugging Face library is imported; True when online.

    The libraries read :data:`OFFLINE_VARIABLES` once, when imported, so the decision is written there:
    ``utils/__init__`` calls this as ``utils`` is imported (every notebook's first import). An offline profile
    never needs the Hub; the ``full`` one goes offline when the Hub does not answer (:func:`hub_reachable`).
    Variables the user set win. A decision inherited from a process of another profile (the course runner
    starts the kernels of the profile it was given) is taken again.
    """
    if os.environ.get(DECIDED_FOR, profile_name) != profile_name:
        for variable in (*OFFLINE_VARIABLES, DECIDED_FOR):
            os.environ.pop(variable, None)
        hub_reachable.cache_clear()  # it answered for the variables just dropped
    if DECIDED_FOR not in os.environ and not any(os.environ.get(v) for v in OFFLINE_VARIABLES):
        if offline_profile or not hub_reachable():
            os.environ.update(dict.fromkeys(OFFLINE_VARIABLES, "1"))
        os.environ[DECIDED_FOR] = profile_name
    return online()


def online() -> bool:
    """Whether this process uses the Hub: not in offline mode, and the Hub answers (probed once per process)."""
    return hub_reachable()


def use_hub(what: str, library_offline: bool) -> bool:
    """Whether loading ``what`` may use the Hub (:func:`online`).

    Without the Hub, the loading library must have started in offline mode (``library_offline``: its own
    switch, read when it was imported after :func:`decide_access`). A library imported before ``utils`` started
    online and would retry the unreachable Hub for half a minute: refused at once, with what to do.
    """
    if online():
        return True
    if not library_offline:
        raise HubUnavailableError(
            f"Could not load {what!r}: the Hub cannot be reached, and the Hugging Face libraries were imported "
            "before `utils`, so they started in online mode. Import utils first (as every notebook does), or set "
            f"HF_HUB_OFFLINE=1, to read the cache. {_ADVICE}")
    return False


def unavailable(what: str, error: Exception) -> HubUnavailableError:
    """The error to raise when ``what`` could not be loaded from the Hub or the cache."""
    return HubUnavailableError(f"Could not load {what!r}: {error.__class__.__name__}. {_ADVICE}")
