"""Talking to the Hugging Face Hub without ever hanging on a dead network.

The ``full`` profile loads models and data sets from the Hub. With no network, the libraries can wait on
time-outs; here we check reachability once (a few seconds at most) and otherwise switch them to the
local cache, so a missing download fails fast with advice instead of hanging.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from utils.config import get_profile
from utils.tasks import PROBES

HUB_HOST = "huggingface.co"

ADVICE = (
    "The Hugging Face Hub cannot be reached and nothing usable is cached. Either run offline with "
    "COURSE_PROFILE=tiny (everything is in data/), or warm the cache on a machine with network with "
    "`COURSE_PROFILE=full python -m utils.hub` (model, tokenizer, target and every probe), then copy "
    "~/.cache/huggingface over."
)


class HubUnavailableError(RuntimeError):
    """The Hub is unreachable and the requested files are not in the local cache."""


def is_local(name_or_path: str) -> bool:
    """True when ``name_or_path`` is a folder on disk rather than a Hub id."""
    return Path(name_or_path).expanduser().exists()


def hub_url() -> str:
    """The address probed for reachability: ``HF_ENDPOINT`` (a mirror) if set, else the Hub (or ``COURSE_HUB_HOST``)."""
    if os.environ.get("HF_ENDPOINT"):
        return os.environ["HF_ENDPOINT"].rstrip("/") + "/"
    return f"https://{os.environ.get('COURSE_HUB_HOST', HUB_HOST)}/"


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick HTTP request to the Hub, through the proxy the libraries would use; False when offline mode is
    forced by the environment.

    A bare TCP connection is not enough: a proxy or firewall that accepts connections but blocks the Hub would
    pass it, and every download would then retry for a minute before failing. Only an answer that is not an
    error (status < 400) counts as reachable.
    """
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    import httpx

    try:
        response = httpx.head(hub_url(), timeout=timeout, follow_redirects=True)
    except (httpx.HTTPError, OSError):
        return False
    return response.status_code < 400


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


def warm_cache(profile=None) -> list[str]:
    """Load everything the profile needs from the Hub once, so that later runs work offline from the HF cache:
    the model, its tokenizer files (checked against the model), the target task and every probe task."""
    from utils import data, modeling  # they import this module: the cycle keeps them here

    profile = profile or get_profile()
    modeling.load_tokenizer(profile)
    modeling.load_model(profile)
    loaded = [f"model and tokenizer {profile.model}"]
    target = data.load_target(profile)
    loaded.append(f"target {profile.target} ({', '.join(f'{s} {len(d):,}' for s, d in target.items())})")
    for probe in PROBES:
        splits = data.load_probe(probe, profile)
        loaded.append(f"probe {probe} from {data.probe_source(probe, profile)} "
                      f"({', '.join(f'{s} {len(d):,}' for s, d in splits.items())})")
    return loaded


if __name__ == "__main__":  # python -m utils.hub: cache everything the active profile needs
    from huggingface_hub import constants as _constants

    for line in warm_cache():
        print("cached:", line)
    print(f"Hub cache: {_constants.HF_HUB_CACHE}; data sets cache: {__import__('datasets').config.HF_DATASETS_CACHE}. "
          f"To work offline elsewhere, copy {_constants.HF_HOME} to the same place there.")
