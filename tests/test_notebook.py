"""What a notebook run leaves outside the course, and the bonus notebook's quick build."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

from utils import config, offline_hf_home


def _run_python(code: str, home: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_", "COURSE_"))}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, "HOME": str(home), **env},
                          capture_output=True, text=True, timeout=300, cwd=config.ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_offline_profiles_leave_the_home_hugging_face_cache_alone(tmp_path):
    results = tmp_path / "results"
    _run_python("from utils import data, evaluation, get_profile; data.load_target(get_profile()); "
                "print(evaluation.score_summaries(['a b'], [['a b c']])['rouge1'])",
                tmp_path / "home", COURSE_PROFILE="smoke", COURSE_RESULTS_DIR=str(results),
                PYTHONPATH=str(config.ROOT))
    assert not (tmp_path / "home" / ".cache").exists(), "an offline run wrote to ~/.cache"
    assert not results.exists() or not any(results.glob("**/.hf-cache")), "the caches went into results/"
    assert (offline_hf_home() / "datasets").is_dir()
    full = _run_python("import os, utils; print(os.environ.get('HF_HOME'))", tmp_path / "home",
                       COURSE_PROFILE="full", PYTHONPATH=str(config.ROOT))
    assert full.strip() == "None"  # the full profile uses the learner's own Hugging Face cache


def test_bonus_notebook_quick_build_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import json
    import tempfile

    notebook = json.loads((config.ROOT / "notebooks" / "bonus_how_the_tiny_model_was_made.ipynb").read_text())
    cell = next("".join(c["source"]) for c in notebook["cells"] if "BuildConfig.quick()" in "".join(c["source"]))

    def build(out, build_config):  # stands in for the real quick build: writes a model folder
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"0" * 100)
        return {"n_parameters": 1, "build_seconds": {"total": 0.0}}

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    tiny_flan = types.SimpleNamespace(build=build, BuildConfig=types.SimpleNamespace(quick=lambda: None))
    exec(cell, {"tiny_flan": tiny_flan})
    assert list(temporary.iterdir()) == []


def test_setup_returns_the_profile_and_says_where_the_notebook_runs(monkeypatch, capsys):
    from utils import notebook

    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    profile = notebook.setup()
    out = capsys.readouterr().out
    assert profile.name == "smoke" and "smoke" in out and "torch" in out and "device:" in out


def test_quiet_libraries_drops_exactly_the_untied_t5_messages():
    """transformers 5 forces T5 configs to say "tied", so every load of an untied T5 logged a warning no learner can
    act on; only that message goes, and transformers' other warnings still show."""
    import logging
    import warnings

    from transformers import AutoModelForSeq2SeqLM

    from utils import notebook

    class Kept(logging.Handler):  # sees what the logger lets through, after its filters
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    logger = logging.getLogger("transformers.modeling_utils")
    kept = Kept()
    logger.addHandler(kept)
    try:
        notebook.quiet_libraries()
        AutoModelForSeq2SeqLM.from_pretrained(config.TINY_MODEL_DIR)
        logger.warning("another message from transformers")
    finally:
        logger.removeHandler(kept)
    assert kept.messages == ["another message from transformers"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        notebook.quiet_libraries()
        warnings.warn("Input and output embeddings are no longer tied after merging. Setting ...", UserWarning,
                      stacklevel=1)
        warnings.warn("Input and output embeddings differ in size", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["Input and output embeddings differ in size"]
