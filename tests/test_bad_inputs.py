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

from utils import config, data, evaluation, modeling, results, templates
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


def _template_file(tmp_path, body: bytes):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "mytask.yaml").write_bytes(b"task: mytask\nfields: {dialogue: string, summary: string}\n" + body)
    return templates.load_templates("mytask", directory=folder)


def template_nested_loops(tmp_path):
    _template(tmp_path, "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                        "{{ dialogue }} ||| {{ summary }}")


def template_slow_loops(tmp_path):  # each range within its limit, together far too slow
    _template(tmp_path, "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
                        "{{ dialogue }} ||| {{ summary }}")


def template_huge_repetition(tmp_path):
    _template(tmp_path, "{{ 'x' * 10**9 }}{{ dialogue }} ||| {{ summary }}")


def template_huge_replace(tmp_path):  # each operand within budget; the result 400 MB
    _template(tmp_path, "{{ ('x' * 20000)|replace('x', 'y' * 20000) }}{{ dialogue }} ||| {{ summary }}")


def template_huge_str_replace(tmp_path):
    _template(tmp_path, "{{ ('x' * 20000).replace('x', 'y' * 20000) }}{{ dialogue }} ||| {{ summary }}")


def template_huge_lipsum(tmp_path):
    _template(tmp_path, "{{ lipsum(10**5) }}{{ dialogue }} ||| {{ summary }}")


def template_yaml_alias_bomb(tmp_path):
    levels = [b"a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]".encode() for i in range(9)]
    _template_file(tmp_path, b"bomb:\n" + b"".join(b"  " + line + b"\n" for line in levels) + b"templates: [*j]\n")


def template_jinja_not_text(tmp_path):
    _template_file(tmp_path, b"templates:\n  - name: my_template\n    jinja: 123\n")


def template_not_utf8(tmp_path):
    _template_file(tmp_path, b"templates:\n  - name: my_template\n    jinja: 'Caf\xe9 {{dialogue}} ||| {{summary}}'\n")


def not_utf8_data_line(tmp_path):
    folder = _copy_target(tmp_path)
    lines = (folder / "train.jsonl").read_bytes().splitlines()
    lines[4] = lines[4].replace(b"#Person1#", b"#Person1\xe9#", 1)  # Latin-1, as saved by an old editor
    (folder / "train.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    data.load_target(_profile_with_target(folder))


def _target_line(tmp_path, line: int, text: str) -> None:
    folder = _copy_target(tmp_path)
    lines = (folder / "train.jsonl").read_text().splitlines()
    lines[line - 1] = text
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    data.load_target(_profile_with_target(folder))


def huge_number_data_line(tmp_path):  # valid JSON that Python refuses to read: an integer of 5,000 digits
    _target_line(tmp_path, 4, '{"id": "x", "dialogue": "a", "summary": "b", "topic": "c", "n": ' + "9" * 5000 + "}")


def deeply_nested_data_line(tmp_path):
    _target_line(tmp_path, 2, '{"id": "x", "dialogue": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _target_with(tmp_path, line: int, column: str, value):
    folder = _copy_target(tmp_path)
    rows = [json.loads(text) for text in (folder / "validation.jsonl").read_text().splitlines()]
    rows[line - 1][column] = value
    (folder / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data.load_target(_profile_with_target(folder))


def null_dialogue(tmp_path):
    _target_with(tmp_path, 3, "dialogue", None)


def numeric_summary(tmp_path):
    _target_with(tmp_path, 2, "summary", 42)


def list_dialogue(tmp_path):
    _target_with(tmp_path, 5, "dialogue", ["#Person1#: Hi.", "#Person2#: Hello."])


def null_probe_text(tmp_path):
    folder = tmp_path / "topic"
    shutil.copytree(data.probe_source("topic", get_profile("smoke")), folder)
    rows = [json.loads(text) for text in (folder / "test.jsonl").read_text().splitlines()]
    rows[0]["text"] = None
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data.load_probe("topic", dataclasses.replace(get_profile("smoke"), probes={"topic": str(folder)}))


def generate_without_prompts(tmp_path, micro_model_dir):
    model, tokenizer = modeling.load_model(str(micro_model_dir)), modeling.load_tokenizer(str(micro_model_dir))
    evaluation.generate(model, tokenizer, None, get_profile("smoke"), progress=False)


def truncated_weights(tmp_path, micro_model_dir):
    folder = tmp_path / "cut"
    shutil.copytree(micro_model_dir, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a copy interrupted halfway
    modeling.load_model(str(folder))


def truncated_course_model(tmp_path):  # a copy of the checkout, so the committed model stays as it is
    from utils import config

    folder = tmp_path / "data" / "models" / "tiny-flan-t5"
    shutil.copytree(config.TINY_MODEL_DIR, folder)
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:100])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ROOT", tmp_path)
        patch.setattr(config, "TINY_MODEL_DIR", folder)
        modeling.load_model(str(folder))


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
    "unknown model name": (unknown_model, (config.HubUnavailableError, modeling.ModelLoadError),
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
    "full profile, no network (data)": (full_profile_offline, config.HubUnavailableError,
                                        ["knkarthick/dialogsum", "COURSE_PROFILE=tiny", "cache"]),
    "full profile, no network (model)": (full_profile_model_offline, config.HubUnavailableError,
                                         ["google/flan-t5-base", "COURSE_PROFILE=tiny", "cache"]),
    "template: nested range() loops": (template_nested_loops, templates.TemplateError,
                                       ["mytask.yaml", "my_template", "rendering budget", "range()", "10,000"]),
    "template: loops past the time budget": (template_slow_loops, templates.TemplateError,
                                             ["my_template", "rendering budget", "more than 2 s"]),
    "template: 'x' * 10**9": (template_huge_repetition, templates.TemplateError,
                              ["my_template", "rendering budget", "1,000,000,000"]),
    "template: replace() to 400 MB": (template_huge_replace, templates.TemplateError,
                                      ["my_template", "rendering budget", "do_replace", "400,000,000"]),
    "template: str.replace() to 400 MB": (template_huge_str_replace, templates.TemplateError,
                                          ["my_template", "rendering budget", "str.replace()", "400,000,000"]),
    "data: a 5,000-digit number": (huge_number_data_line, data.DataError,
                                   ["train.jsonl", "line 4", "4300 digits", "make data"]),
    "data: lists nested 100,000 deep": (deeply_nested_data_line, data.DataError,
                                        ["train.jsonl", "line 2", "nested too deeply", "make data"]),
    "template: lipsum(10**5)": (template_huge_lipsum, templates.TemplateError,
                                ["my_template", "rendering budget", "lipsum(n=100000"]),
    "template file: YAML alias bomb": (template_yaml_alias_bomb, templates.TemplateError,
                                       ["mytask.yaml", "alias", "write the text out"]),
    "template: jinja is a number": (template_jinja_not_text, templates.TemplateError,
                                    ["mytask.yaml", "line 4", "my_template", "'jinja' must be text", "int 123"]),
    "template file not UTF-8": (template_not_utf8, templates.TemplateError,
                                ["mytask.yaml", "line 5", "not UTF-8", "0xe9", "save the file as UTF-8"]),
    "data line not UTF-8": (not_utf8_data_line, data.DataError,
                            ["train.jsonl", "line 5", "not UTF-8", "0xe9", "make data"]),
    "data: null dialogue": (null_dialogue, data.DataError,
                            ["validation.jsonl", "line 3", "'dialogue'", "null", "must be text", "make data"]),
    "data: numeric summary": (numeric_summary, data.DataError,
                              ["validation.jsonl", "line 2", "'summary'", "int 42", "must be text"]),
    "data: list dialogue": (list_dialogue, data.DataError,
                            ["validation.jsonl", "line 5", "'dialogue'", "list [", "must be text"]),
    "probe data: null text": (null_probe_text, data.DataError,
                              ["topic/test.jsonl", "line 1", "'text'", "null", "must be text"]),
    "generate(..., None)": (generate_without_prompts, TypeError, ["prompts is None", "list of texts"]),
    "truncated model.safetensors": (truncated_weights, modeling.ModelLoadError,
                                    ["model.safetensors", "/cut", "truncated or corrupt", "save it again"]),
    "truncated course model": (truncated_course_model, modeling.ModelLoadError,
                               ["truncated or corrupt", "git checkout -- data/models/tiny-flan-t5", "make model"]),
}
NEEDS_MODEL = {lora_unknown_targets, prompt_too_long, pickle_only_model, generate_without_prompts, truncated_weights}


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
    config.hub_reachable.cache_clear()
    path = results.save_metrics("zero_shot", {"rouge1": 0.2}, get_profile("smoke"))
    yield path, path.read_text()
    config.hub_reachable.cache_clear()


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
