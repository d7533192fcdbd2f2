"""What a learner's mistakes get: one table of bad inputs, each with its error and its advice.

Every case must fail fast, with a message that names what is wrong and what to do, and must leave what was
already written (a metrics file, the data files) untouched.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import pytest

from utils import data, evaluation, hub, modeling, results, templates
from utils.config import Profile, ProfileError, get_profile


def _copy_target(tmp_path: Path) -> Path:
    folder = tmp_path / "dialogsum"
    shutil.copytree(get_profile("smoke").target, folder)
    return folder


def _profile_with_target(folder: Path) -> Profile:
    return dataclasses.replace(get_profile("smoke"), target=str(folder))


def unknown_profile(tmp_path):
    get_profile("medium")


def unknown_model(tmp_path):
    modeling.load_model("no-such-org/no-such-model-xyz")


def missing_data_file(tmp_path):
    folder = _copy_target(tmp_path)
    (folder / "validation.jsonl").unlink()
    data.load_target(_profile_with_target(folder))


def empty_data_file(tmp_path):
    folder = _copy_target(tmp_path)
    (folder / "test.jsonl").write_text("")
    data.load_target(_profile_with_target(folder))


def malformed_data_line(tmp_path):
    folder = _copy_target(tmp_path)
    lines = (folder / "train.jsonl").read_text().splitlines()
    lines[6] = lines[6][: len(lines[6]) // 2]  # a line cut in half, as by an interrupted copy
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    data.load_target(_profile_with_target(folder))


def missing_columns(tmp_path):
    folder = _copy_target(tmp_path)
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    rows[0].pop("summary")
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data.load_target(_profile_with_target(folder))


def _template(tmp_path, jinja: str):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "mytask.yaml").write_text(
        "task: mytask\nfields: {dialogue: string, summary: string}\ntemplates:\n"
        f"  - name: my_template\n    jinja: {json.dumps(jinja)}\n")
    return templates.load_templates("mytask", directory=folder)


def undefined_variable(tmp_path):
    _template(tmp_path, "Summarize: {{ dialog }} ||| {{ summary }}")


def empty_target(tmp_path):
    template = templates.load_templates("dialogsum")[0]
    template.render({"id": "x", "dialogue": "#Person1#: Hi.", "summary": "  ", "topic": "t"})


def lora_unknown_targets(tmp_path, micro_model_dir):
    modeling.add_lora(modeling.load_model(str(micro_model_dir)), get_profile("smoke"), targets=("query", "value"))


def prompt_too_long(tmp_path, micro_model_dir):
    tokenizer = modeling.load_tokenizer(str(micro_model_dir))
    model = modeling.load_model(str(micro_model_dir))
    evaluation.generate(model, tokenizer, ["short", "word " * 600], evaluation.generation_config(get_profile("smoke")),
                        max_source_length=512, progress=False)


def pickle_only_model(tmp_path, micro_model_dir):
    folder = tmp_path / "pickled"
    shutil.copytree(micro_model_dir, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    modeling.load_model(str(folder))


def full_profile_offline(tmp_path):
    data.load_target(get_profile("full"))


def full_profile_model_offline(tmp_path):
    modeling.load_model(get_profile("full"))


# case -> (what triggers it, the error type, words the message must contain)
CASES = {
    "unknown profile": (unknown_profile, ProfileError, ["'medium'", "tiny", "smoke", "full"]),
    "unknown model name": (unknown_model, (hub.HubUnavailableError, modeling.ModelLoadError),
                           ["no-such-org/no-such-model-xyz", "COURSE_PROFILE=tiny"]),
    "data file missing": (missing_data_file, data.DataError, ["validation.jsonl", "not found", "make data"]),
    "data file empty": (empty_data_file, data.DataError, ["test.jsonl", "empty", "make data"]),
    "data line malformed": (malformed_data_line, data.DataError, ["train.jsonl", "line 7", "make data"]),
    "missing columns": (missing_columns, data.DataError, ["train.jsonl", "line 1", "summary"]),
    "template undefined variable": (undefined_variable, templates.TemplateError, ["my_template", "dialog"]),
    "template empty target": (empty_target, templates.TemplateError, ["summarize_following_conversation", "empty"]),
    "LoRA targets not in model": (lora_unknown_targets, ValueError, ["query", "value", "'q'"]),
    "prompt over the limit": (prompt_too_long, evaluation.PromptTooLongError, ["512"]),
    "pickle-only model folder": (pickle_only_model, modeling.ModelLoadError,
                                 ["safetensors", "pytorch_model.bin"]),
    "full profile, no network (data)": (full_profile_offline, hub.HubUnavailableError,
                                        ["knkarthick/dialogsum", "COURSE_PROFILE=tiny", "cache"]),
    "full profile, no network (model)": (full_profile_model_offline, hub.HubUnavailableError,
                                         ["google/flan-t5-base", "COURSE_PROFILE=tiny", "cache"]),
}
NEEDS_MODEL = {lora_unknown_targets, prompt_too_long, pickle_only_model}


@pytest.fixture
def written(tmp_path, monkeypatch):
    """Results written before the mistake; they must survive it."""
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache: nothing to fall back on
    monkeypatch.setenv("COURSE_HUB_HOST", "localhost")  # never the real network: a closed port here
    import huggingface_hub.constants as hub_constants

    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # restored after the test, whatever it sets
        monkeypatch.setenv(variable, "0")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    hub.hub_reachable.cache_clear()
    path = results.save_metrics("zero_shot", {"rouge1": 0.2}, get_profile("smoke"))
    yield path, path.read_text()
    hub.hub_reachable.cache_clear()


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_gets_a_clear_error(case, tmp_path, written, request):
    trigger, error_type, words = CASES[case]
    arguments = [tmp_path] + ([request.getfixturevalue("micro_model_dir")] if trigger in NEEDS_MODEL else [])
    data_before = {p: p.stat().st_mtime_ns for p in Path(get_profile("smoke").target).glob("*.jsonl")}
    started = time.monotonic()
    with pytest.raises(error_type) as error:
        trigger(*arguments)
    assert time.monotonic() - started < 10, f"{case} took too long to fail"
    message = str(error.value)
    for word in words:
        assert word in message, f"{case}: {word!r} missing from the message: {message}"
    path, before = written
    assert path.read_text() == before, "a bad input must not change what was already written"
    assert data_before == {p: p.stat().st_mtime_ns for p in Path(get_profile("smoke").target).glob("*.jsonl")}
