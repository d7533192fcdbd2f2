"""The instruction fine-tuning course's shared library.

Notebooks import from here; every module does one job:
``config`` (profiles, paths, seeds), ``data`` (target and probe tasks), ``synth`` (the synthetic corpus),
``templates`` (prompt templates), ``modeling`` (models, tokenizers, LoRA), ``training`` (fine-tuning and
checkpoint caching), ``evaluation`` (generation, ROUGE, bootstrap, forgetting), ``results`` (metrics.json),
``plots``, ``tiny_flan`` (builds the offline model) and ``course`` (runs the notebooks headlessly).
"""

import os

# OpenMP threads that spin while waiting for work steal the CPU from each other and from the notebook's other
# processes on a small machine. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from utils.config import PROFILES, get_profile, set_seed  # noqa: E402


def _keep_hf_caches_in_results() -> None:
    """The offline profiles need nothing from the Hugging Face cache, yet ``datasets`` and ``evaluate`` write
    theirs (Arrow copies of the JSON files, the ROUGE module): keep them in ``results/.hf-cache``, not in
    ``~/.cache/huggingface``. Runs before any Hugging Face library is imported; an ``HF_HOME`` set by the user wins.
    """
    profile = PROFILES.get((os.environ.get("COURSE_PROFILE") or "tiny").strip())
    if profile is not None and profile.offline:
        os.environ.setdefault("HF_HOME", str(profile.results_dir.parent / ".hf-cache"))


_keep_hf_caches_in_results()

__all__ = ["get_profile", "set_seed"]
