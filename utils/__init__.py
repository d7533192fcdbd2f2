"""The instruction fine-tuning course's shared library.

Notebooks import from here; every module does one job. Imports run one way, down this list's layers:

* base -- ``config`` (profiles, paths and how they are shown, seeds), ``tasks`` (the task registry: one record per task),
  ``hub`` (Hub access that never hangs), ``results`` (metrics.json and atomic writes), ``fingerprints``
  (the hash behind every cache key), ``facts`` (fact recall and grounding rules), ``expectations`` (one table of
  the numbers a learner should see and the course's targets on metrics.json), ``plots`` (one function per
  kind of picture), ``progress`` (the course's progress bar, readable in a saved notebook);
* data -- ``data`` (load every task in any profile, test splits, reference groups), ``templates`` (prompt
  templates and rendering);
* models -- ``modeling`` (models, tokenizers, LoRA, weight and folder fingerprints, and
  ``python -m utils.modeling``: everything a profile needs, cached from the Hub);
* scoring -- ``evaluation`` (prompt fitting, generation, ROUGE, bootstrap, probe metrics, forgetting measures),
  ``scoring`` (the course's models scored on its test sets), ``prompting`` (zero- and few-shot prompts);
* training -- ``training`` (fine-tuning and checkpoint caching), ``finetuning`` (the target task's training
  data and the single-task runs), ``comparison`` (lesson 03's tables);
* lessons -- ``mixture`` (FLAN-style mixtures, lesson 05), ``forgetting`` (probing models for forgetting,
  lesson 04), ``playground`` (lesson 06: try, ship and use a model);
* tools -- ``notebook`` (each notebook's set-up), ``course`` (runs the notebooks headlessly), ``slides`` (the
  executed lessons as offline slides, ``make slides``), ``train`` (the command-line trainer);
* ``world`` -- the offline world's builders, build tools that no lesson module imports: ``world.synth``
  (writes the synthetic corpus, ``make data``) and ``world.tiny_flan`` (builds the tiny model, ``make model``).
"""

import getpass
import os
import tempfile
from pathlib import Path

# OpenMP threads that spin while waiting for work steal the CPU from each other and from the notebook's other
# processes on a small machine. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from utils import config  # noqa: E402
from utils.config import PROFILES, get_profile, set_seed  # noqa: E402


def offline_hf_home() -> Path:
    """Where the offline profiles keep the Hugging Face libraries' caches: a folder of this user's in the system's
    temporary folder, outside ``results/`` (which may be read-only, or relative to a notebook's folder) and
    outside ``~/.cache/huggingface`` (an offline course downloads nothing worth keeping there)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's unnamed user)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"flan-course-hf-{user}"


def prepare_hugging_face() -> None:
    """What the Hugging Face libraries read once, when imported, so this runs before any of them is: as ``utils``
    is imported, for ``$COURSE_PROFILE``, and again by ``python -m utils.train`` for its ``--profile``.

    * The offline profiles need nothing from the Hugging Face cache, yet ``datasets`` and ``evaluate`` write
      theirs (Arrow copies of the JSON files, the ROUGE module, and their lock files): they go to
      :func:`offline_hf_home`, so that a read-only ``results/`` still loads finished runs. An ``HF_HOME`` set by
      the user wins; the ``full`` profile uses the user's own cache (one inherited from an offline run is dropped).
    * Online or offline, decided once for the profile (:func:`utils.config.decide_access`).
    """
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
