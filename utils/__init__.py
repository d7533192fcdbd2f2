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

from utils.config import get_profile, set_seed  # noqa: E402

__all__ = ["get_profile", "set_seed"]
