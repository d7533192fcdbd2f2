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

from utils import hub  # noqa: E402
from utils.config import PROFILES, get_profile, set_seed  # noqa: E402


def _prepare_hugging_face() -> None:
    """What the Hugging Face libraries read once, when imported, so this runs before any of them is.

    * The offline profiles need nothing from the Hugging Face cache, yet ``datasets`` and ``evaluate`` write
      theirs (Arrow copies of the JSON files, the ROUGE module): keep them in ``results/.hf-cache``, not in
      ``~/.cache/huggingface``; an ``HF_HOME`` set by the user wins.
    * Online or offline, decided once for the profile (:func:`utils.hub.decide_access`).
    """
    profile = PROFILES.get((os.environ.get("COURSE_PROFILE") or "tiny").strip())
    if profile is None:  # get_profile() explains the valid names when the notebook asks for the profile
        return
    if profile.offline:
        os.environ.setdefault("HF_HOME", str(profile.results_dir.parent / ".hf-cache"))
    hub.decide_access(profile.name, profile.offline)


_prepare_hugging_face()

__all__ = ["get_profile", "set_seed"]
