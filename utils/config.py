"""Profiles, paths, seeds and Hub access: the one place where the course's worlds differ.

A *profile* names the model, the data and the budgets (never the code path); ``COURSE_PROFILE`` picks it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
RESULTS_DIR = ROOT / "results"
TINY_MODEL_DIR = DATA_DIR / "models" / "tiny-flan-t5"
TEMPLATES_DIR = DATA_DIR / "templates"
NOTEBOOK_DIR = ROOT / "notebooks"


def shown_path(path: str | Path) -> str:
    """``path`` relative to the course folder, ``$COURSE_RESULTS_DIR`` or ``~``: no machine path shown."""
    text, results = str(path), os.environ.get("COURSE_RESULTS_DIR")
    if not Path(text).is_absolute():
        return text
    resolved = Path(text).resolve()
    for base, name in ((ROOT, ""), (results and Path(results).resolve(), "$COURSE_RESULTS_DIR/"),
                       (Path.home().resolve(), "~/")):
        if base and resolved.is_relative_to(base):
            return name + resolved.relative_to(base).as_posix()
    return text


class ProfileError(ValueError):
    """An unknown profile or an invalid budget override."""


class SettingError(ProfileError):
    """A budget or setting outside its valid range (a step count, a learning rate, a batch size...)."""


@dataclass(frozen=True)
class Profile:
    """Everything that differs between worlds: names and budgets, never logic."""

    name: str
    model: str  # Hub id or local folder
    target: str  # Hub id or local folder of JSONL files in the DialogSum schema
    probes: dict[str, str]  # overrides, probe name -> Hub id or local folder (default: utils/data.py's entry)
    offline: bool  # True when everything is on disk
    n_train: int | None  # training examples of the target task (None = all)
    n_eval_dialogues: int | None  # test dialogues scored (None = whole test split)
    n_probe_eval: int | None  # test examples per probe task
    train_steps: int
    batch_size: int
    eval_batch_size: int
    lr_full: float
    lr_lora: float
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_targets: tuple[str, ...]
    max_source_length: int = 512
    max_target_length: int = 128
    max_new_tokens: int = 64
    n_validation: int = 64  # validation examples scored along training
    n_checkpoints: int = 4  # checkpoints kept along training (for learning-vs-forgetting curves)
    seed: int = 42
    extra: dict = field(default_factory=dict)

    @property
    def results_dir(self) -> Path:
        """``results/<profile>/`` (the parent folder can be moved with ``COURSE_RESULTS_DIR``)."""
        return Path(os.environ.get("COURSE_RESULTS_DIR") or RESULTS_DIR) / self.name

    def describe(self) -> str:
        where = "offline, everything from data/" if self.offline else "Hugging Face Hub (or a warm cache)"
        return (f"Profile '{self.name}': model {shown_path(self.model)}, target data "
                f"{shown_path(self.target)} ({where}); {self.train_steps} training steps of batch "
                f"{self.batch_size}; {self.n_eval_dialogues or 'all'} test dialogues. "
                "Switch with COURSE_PROFILE=tiny|smoke|full.")


_TINY = dict(
    model=str(TINY_MODEL_DIR), target=str(DATA_DIR / "dialogsum"), offline=True,
    probes={},  # each probe's own folder (utils/data.py)
    # Rank 6 on q, v, o, wi_0, wi_1, wo: 2.9% of the weights (issue 14: at most 3%); ROUGE-1 0.595, 85% of
    # full fine-tuning's 0.699 (the sweep: data/models/tiny-flan-t5-trials.md, round 5).
    lora_r=6, lora_alpha=12, lora_dropout=0.05, lora_targets=("q", "v", "o", "wi_0", "wi_1", "wo"),
    max_source_length=512, max_target_length=64, max_new_tokens=48,
)

PROFILES: dict[str, Profile] = {
    # 200 steps of batch 16 (0.8 epoch): with 300, lessons 03 and 05 took up to 284 s on an idle 2-core
    # machine, too close to the 5-minute budget for machines up to 2x slower.
    "tiny": Profile(
        name="tiny", n_train=None, n_eval_dialogues=None, n_probe_eval=200, train_steps=200,
        batch_size=16, eval_batch_size=64, lr_full=1e-3, lr_lora=1e-2, **_TINY,
    ),
    "smoke": Profile(
        name="smoke", n_train=256, n_eval_dialogues=16, n_probe_eval=16, train_steps=8,
        batch_size=8, eval_batch_size=16, lr_full=1e-3, lr_lora=1.5e-2, n_checkpoints=2, n_validation=16,
        **_TINY,
    ),
    "full": Profile(
        name="full", model="google/flan-t5-base", target="knkarthick/dialogsum", offline=False,
        probes={},  # each probe's Hub data set (utils/data.py)
        # Sized for a free Colab T4 (fp32): about an hour in all (estimated, ~0.5 s per step). 500 steps of
        # batch 4 are a sixth of an epoch; the reference lab trained ten (COURSE_BUDGET=lab): expect less.
        n_train=None, n_eval_dialogues=200, n_probe_eval=200, train_steps=500, batch_size=4,
        eval_batch_size=32,
        lr_full=5e-5,  # the lab's 1e-5 is for ten epochs; 5e-5 is the common FLAN-T5-base SAMSum recipe
        lr_lora=1e-3, lora_r=32, lora_alpha=32, lora_dropout=0.05, lora_targets=("q", "v"),
        max_source_length=512, max_target_length=128, max_new_tokens=128, n_checkpoints=3, n_validation=50,
        extra={"budgets": {
            # The reference lab: 10 epochs at batch 4, every test dialogue. Hours on an A100, days on a T4.
            "lab": dict(train_steps=31150, lr_full=1e-5, n_eval_dialogues=None, n_probe_eval=500,
                        n_checkpoints=5, n_validation=200),
        }},
    ),
}

#: The reference lab's published ROUGE-1 (``lab`` budget), scored as ``score_summaries(..., protocol="lab")``.
LAB_ROUGE1 = {"zero-shot": 0.2334, "full": 0.4216, "lora": 0.4081}

#: The most training steps and the largest batch a run may ask for: a typo cannot run (or allocate) forever.
MAX_TRAIN_STEPS, MAX_BATCH_SIZE = 1_000_000, 4096
#: Environment variables that override a profile's budgets: the field each one sets and its valid range.
OVERRIDES = {
    "COURSE_TRAIN_STEPS": ("train_steps", 1, MAX_TRAIN_STEPS),
    "COURSE_EVAL_DIALOGUES": ("n_eval_dialogues", 1, 10**9),
    "COURSE_BATCH_SIZE": ("batch_size", 1, MAX_BATCH_SIZE),
    "COURSE_PROBE_EVAL": ("n_probe_eval", 1, 10**9),
    "COURSE_N_TRAIN": ("n_train", 1, 10**9),
    "COURSE_MAX_NEW_TOKENS": ("max_new_tokens", 1, 4096),
}
#: Every ``COURSE_*`` environment variable the course reads; any other one is most likely a typo.
_KNOWN_VARIABLES = ("COURSE_PROFILE", "COURSE_MODEL", "COURSE_RESULTS_DIR", "COURSE_HUB_HOST",
                   "COURSE_BUDGET", *OVERRIDES)


def check_setting(name: str, value, low, high, kind: type = int):
    """``value`` if a ``kind`` in ``[low, high]`` (``low`` excluded for floats), else an error."""
    if kind is int:
        ok = isinstance(value, numbers.Integral) and low <= value <= high
        valid = f"a whole number from {low:,} to {high:,}"
    else:
        ok = isinstance(value, numbers.Real) and math.isfinite(value) and low < value <= high
        valid = f"a number above {low:g} and at most {high:g}"
    if isinstance(value, bool) or not ok:
        raise SettingError(f"{name}={value!r} is out of range: give {valid}.")
    return kind(value)


_WARNED: set[str] = set()  # unknown variables already warned about (once per process)


def _check_variables() -> None:
    """Refuse a ``COURSE_*`` variable close to a known name (a typo), suggesting it; warn about any other."""
    for var in sorted(v for v in os.environ if v.startswith("COURSE_") and v not in _KNOWN_VARIABLES):
        close = difflib.get_close_matches(var, _KNOWN_VARIABLES, n=1, cutoff=0.75)
        if close:
            raise ProfileError(f"Unknown environment variable {var} (did you mean {close[0]}?). "
                               f"Rename it, or unset it; the course reads {', '.join(_KNOWN_VARIABLES)}.")
        if var not in _WARNED:
            _WARNED.add(var)
            warnings.warn(f"The course does not read the environment variable {var}; it is ignored. "
                          f"Known variables: {', '.join(_KNOWN_VARIABLES)}.", stacklevel=3)


def resolve_path_variables(environ=None, cwd: str | Path | None = None) -> None:
    """Make relative ``COURSE_RESULTS_DIR`` and ``COURSE_MODEL`` in ``environ`` absolute against ``cwd``
    (``COURSE_MODEL`` is a path when such a folder exists or it starts with ``.`` or ``~``, else a Hub id)."""
    environ = os.environ if environ is None else environ
    cwd = Path(cwd or os.getcwd())
    for var in ("COURSE_RESULTS_DIR", "COURSE_MODEL"):
        raw = environ.get(var, "")
        path = Path(raw).expanduser()
        is_path = raw and (var == "COURSE_RESULTS_DIR" or raw.startswith((".", "~")) or (cwd / path).exists())
        if is_path and not path.is_absolute():
            environ[var] = str((cwd / path).resolve())
        elif is_path and raw.startswith("~"):
            environ[var] = str(path)


def get_profile(name: str | None = None) -> Profile:
    """Profile ``name`` (else ``$COURSE_PROFILE``, else ``tiny``) with the environment's overrides."""
    name = (name or os.environ.get("COURSE_PROFILE") or "tiny").strip()
    if name not in PROFILES:
        raise ProfileError(f"Unknown course profile {name!r}. Valid profiles: {', '.join(PROFILES)}. "
                           "Set COURSE_PROFILE to one of them (tiny runs offline on a laptop CPU).")
    _check_variables()
    changes: dict = dict(named_budget(PROFILES[name], os.environ.get("COURSE_BUDGET")))
    if os.environ.get("COURSE_MODEL"):
        changes["model"] = os.environ["COURSE_MODEL"]
    for var, (attr, low, high) in OVERRIDES.items():
        raw = os.environ.get(var)
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise ProfileError(f"{var}={raw!r} is not a whole number; "
                                   f"unset it or give e.g. {var}=100") from None
            changes[attr] = check_setting(var, value, low, high)
    return dataclasses.replace(PROFILES[name], **changes)


def named_budget(profile: Profile, budget: str | None) -> dict:
    """The settings of ``profile``'s budget named ``budget`` (None or ``default``: no change)."""
    budget = (budget or "default").strip()
    budgets = {"default": {}, **profile.extra.get("budgets", {})}
    if budget not in budgets:
        raise ProfileError(f"COURSE_BUDGET={budget!r} is not a budget of the {profile.name!r} profile; "
                           f"valid: {', '.join(budgets)}. Unset it to use the profile's own budget.")
    return budgets[budget]


def set_seed(seed: int = 42) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so a run can be repeated."""
    import transformers  # imported late: importing utils must not load torch

    transformers.set_seed(seed)


def device() -> str:
    """The device the course computes on: ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


_ADVICE = ("The Hugging Face Hub cannot be reached and nothing usable is cached. Either run offline with "
           "COURSE_PROFILE=tiny (everything is in data/), or warm the cache on a machine with network with "
           "`COURSE_PROFILE=full python -m utils.modeling` (model, tokenizer, target and every probe), then "
           "copy ~/.cache/huggingface over.")

#: What the Hugging Face libraries read, once, on import, to know whether they may use the network.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
#: The profile whose decision those variables hold when the course set them (unset: they are the user's own).
DECIDED_FOR = "FLAN_COURSE_HUB_DECIDED_FOR"


class HubUnavailableError(RuntimeError):
    """The Hub is unreachable and the requested files are not in the local cache."""


def is_local(name_or_path: str) -> bool:  # a folder on disk rather than a Hub id
    return Path(name_or_path).expanduser().exists()


@functools.cache
def hub_reachable() -> bool:
    """Whether this process uses the Hub: not offline (``HF_HUB_OFFLINE``), and one HTTP request to it (or
    ``HF_ENDPOINT``) through the libraries' proxy is answered (a bare TCP connect passes a firewall)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return False
    import httpx

    host = os.environ.get("HF_ENDPOINT") or f"https://{os.environ.get('COURSE_HUB_HOST', 'huggingface.co')}"
    try:
        response = httpx.head(host.rstrip("/") + "/", timeout=3.0, follow_redirects=True)
    except (httpx.HTTPError, OSError):
        return False
    return response.status_code < 400


def decide_access(profile_name: str, offline_profile: bool) -> None:
    """Write :data:`OFFLINE_VARIABLES` before any Hugging Face library is imported: offline for an offline
    profile or when the Hub does not answer. The user's own win; another profile's are decided anew."""
    if os.environ.get(DECIDED_FOR, profile_name) != profile_name:
        for variable in (*OFFLINE_VARIABLES, DECIDED_FOR):
            os.environ.pop(variable, None)
        hub_reachable.cache_clear()  # it answered for the variables just dropped
    if DECIDED_FOR not in os.environ and not any(os.environ.get(v) for v in OFFLINE_VARIABLES):
        if offline_profile or not hub_reachable():
            os.environ.update(dict.fromkeys(OFFLINE_VARIABLES, "1"))
        os.environ[DECIDED_FOR] = profile_name


def use_hub(what: str, library_offline: bool) -> bool:
    """Whether loading ``what`` may use the Hub; without it, refuse a library that started online
    (``library_offline`` False: imported before ``utils``), which would retry the Hub for half a minute."""
    if hub_reachable():
        return True
    if not library_offline:
        raise HubUnavailableError(f"Could not load {what!r}: the Hugging Face libraries, imported before "
                                  "`utils`, started online. Import utils first (as every notebook does), or "
                                  f"set HF_HUB_OFFLINE=1, to read the cache. {_ADVICE}")
    return False


def unavailable(what: str, error: Exception) -> HubUnavailableError:  # neither from the Hub nor the cache
    return HubUnavailableError(f"Could not load {what!r}: {error.__class__.__name__}. {_ADVICE}")
