"""What a demanding user's runs get: no folder of theirs deleted, no stale cache, validated budgets,
paths read where the command ran, and the real error shown (issue 16, beside ``test_bad_inputs.py``)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import micro_pairs, run_dir

from utils import (
    config,
    course,
    data,
    evaluation,
    finetuning,
    forgetting,
    modeling,
    results,
    scoring,
    templates,
    train,
    training,
)
from utils.config import ProfileError, SettingError, get_profile


def _user_folder(folder: Path) -> dict[str, str]:
    """A folder of a user's own work; returns its files' contents, to check nothing was lost."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.txt").write_text("Chapter 1. Four years of work.\n")
    (folder / "notes.md").write_text("# notes\n")
    return _contents(folder)


def _contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir() if p.is_file() and p.suffix in (".txt", ".md")}


# --- data loss: --force deletes only what the course wrote ------------------------------------------------


def test_force_refuses_a_folder_the_course_did_not_make(micro_profile, tmp_path):
    folder = tmp_path / "mine"
    before = _user_folder(folder)
    with pytest.raises(training.RunFolderError, match="did not write"):
        training.train("x", "full", micro_pairs(8), micro_profile, steps=2, force=True, output_dir=folder)
    assert _contents(folder) == before and sorted(p.name for p in folder.iterdir()) == ["notes.md", "thesis.txt"]


def test_command_line_force_output_keeps_the_users_folder(tmp_path, capsys):
    folder = tmp_path / "mine"
    before = _user_folder(folder)
    assert train.main(["--profile", "smoke", "--output", str(folder), "--force", "--no-score"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert _contents(folder) == before


def test_output_dot_never_wipes_the_checkout(tmp_path, monkeypatch, capsys):
    checkout = tmp_path / "checkout"
    before = _user_folder(checkout)
    (checkout / "utils").mkdir()
    (checkout / "utils" / "keep.py").write_text("x = 1\n")
    monkeypatch.chdir(checkout)
    assert train.main(["--profile", "smoke", "--output", ".", "--force", "--no-score"]) == 2
    assert str(checkout) in capsys.readouterr().err
    assert _contents(checkout) == before and (checkout / "utils" / "keep.py").read_text() == "x = 1\n"


def test_force_in_a_course_folder_deletes_only_what_the_course_wrote(micro_profile, tmp_path, capsys):
    folder = tmp_path / "run"
    pairs = micro_pairs(8)
    training.train("x", "full", pairs, micro_profile, steps=2, n_checkpoints=1, output_dir=folder)
    assert (folder / training.RUN_MARKER).exists()
    (folder / "checkpoint-notes.txt").write_text("mine too\n")  # named like a checkpoint, but a file of theirs
    before = _user_folder(folder)  # the user keeps notes beside the run
    (folder / "checkpoint-99").mkdir()  # a stale checkpoint of the course's: it goes
    capsys.readouterr()
    run = training.train("x", "full", pairs, micro_profile, steps=2, n_checkpoints=1, output_dir=folder,
                         force=True)
    assert "Trained in" in capsys.readouterr().out
    assert _contents(folder) == before and "checkpoint-notes.txt" in before
    assert [step for step, _ in training.checkpoints(run.path)] == [2]


# --- stale or wrong results ---------------------------------------------------------------------------------


def test_a_run_without_validation_is_not_reused_by_one_with_it(micro_profile, capsys):
    pairs, validation = micro_pairs(8), micro_pairs(4, seed=1)
    plain = training.train("v", "full", pairs, micro_profile, steps=2, n_checkpoints=1)
    capsys.readouterr()
    scored = training.train("v", "full", pairs, micro_profile, validation, steps=2, n_checkpoints=1)
    assert "Loaded the cached run" not in capsys.readouterr().out
    assert scored.path != plain.path
    assert "eval_loss" in training.history_frame(scored.log_history).columns  # what lesson 03 reads


def test_the_command_line_keys_a_run_by_its_validation(monkeypatch, tmp_results):
    """``python -m utils.train --no-validation`` must not land in the run lesson 03 loads."""
    seen = {}

    def fake_train(name, method, train_data, profile, eval_data, **kwargs):
        seen[eval_data is None] = (name, kwargs["output_dir"])
        raise SystemExit(0)

    monkeypatch.setattr(training, "train", fake_train)
    monkeypatch.setattr(train, "FirstBatchLog", lambda *a: None)
    for extra in ([], ["--no-validation"]):
        with pytest.raises(SystemExit):
            train.main(["--profile", "smoke", "--no-score", *extra])
    # both go to the run cache, under lesson 03's run name; the key tells them apart (validation data is in it)
    assert seen == {False: ("single_task_full", None), True: ("single_task_full", None)}
    profile = get_profile("smoke")
    settings = training.RunSettings.from_profile("single_task_full", "full", profile)
    pairs = finetuning.summarization_training_data(profile)
    assert run_dir(settings, pairs, profile, eval_data=finetuning.validation_pairs(profile)) != run_dir(
        settings, pairs, profile)


def _edited_template_dir(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the template library that the course reads instead of ``data/templates``."""
    folder = tmp_path / "templates"
    shutil.copytree(config.TEMPLATES_DIR, folder)
    original = templates.get_template
    monkeypatch.setattr(templates, "get_template", lambda task, name, directory=folder: original(task, name, directory))
    return folder


def _edit_eval_template(folder: Path) -> None:
    """Reword the evaluation template's instruction (its name stays)."""
    path = folder / f"{data.TARGET_TASK}.yaml"
    start = f"name: {scoring.EVAL_TEMPLATE}\n    jinja: |-\n      Summarize the following conversation."
    assert start in path.read_text(), "the test needs the evaluation template's wording"
    path.write_text(path.read_text().replace(start, start.replace("conversation.", "dialogue, briefly.")))


def test_target_summaries_are_keyed_by_the_template_text(micro_profile, micro_model_dir, tmp_path, monkeypatch):
    folder = _edited_template_dir(tmp_path, monkeypatch)
    before = templates.get_template(data.TARGET_TASK, scoring.EVAL_TEMPLATE).jinja
    calls = []

    def fake_summaries(model, tokenizer, dialogues, profile, template_name, desc):
        calls.append(templates.get_template(data.TARGET_TASK, template_name).jinja)
        return [f"summary {len(calls)}"] * len(dialogues), []

    monkeypatch.setattr(scoring, "_summarize", fake_summaries)
    model, tokenizer = modeling.load_model(str(micro_model_dir)), modeling.load_tokenizer(str(micro_model_dir))
    profile = dataclasses.replace(micro_profile, n_eval_dialogues=2)
    first = forgetting.target_scores(model, tokenizer, profile)
    assert forgetting.target_scores(model, tokenizer, profile) == first and len(calls) == 1  # cached
    _edit_eval_template(folder)
    assert templates.get_template(data.TARGET_TASK, scoring.EVAL_TEMPLATE).jinja != before
    forgetting.target_scores(model, tokenizer, profile)
    assert calls == [before, templates.get_template(data.TARGET_TASK, scoring.EVAL_TEMPLATE).jinja], \
        "an edited template must be summarized again"


def test_saved_zero_shot_is_not_reused_after_the_template_text_changes(micro_profile, tmp_path, monkeypatch):
    folder = _edited_template_dir(tmp_path, monkeypatch)
    profile = dataclasses.replace(micro_profile, n_eval_dialogues=2)
    scores = {key: 0.2 for key in [*scoring.SCORE_KEYS, *evaluation.FACT_RECALL_KEYS]}  # as lesson 01 saves
    results.save_metrics("zero_shot", {**scores, "n_dialogues": 2, **scoring.zero_shot_setup(profile)}, profile)
    assert scoring.saved_zero_shot(profile) is not None
    _edit_eval_template(folder)
    assert scoring.saved_zero_shot(profile) is None


def test_model_fingerprint_covers_the_tokenizer_and_not_the_path(micro_model_dir, tmp_path):
    moved = shutil.copytree(micro_model_dir, tmp_path / "moved" / "model")
    assert modeling.model_fingerprint(str(moved)) == modeling.model_fingerprint(str(micro_model_dir))
    (moved / "README.md").write_text("a model card edit changes nothing a run does\n")
    assert modeling.model_fingerprint(str(moved)) == modeling.model_fingerprint(str(micro_model_dir))
    tokenizer = json.loads((moved / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"][-1][1] -= 1.0  # one token's score: the same weights, another tokenization
    (moved / "tokenizer.json").write_text(json.dumps(tokenizer))
    assert modeling.model_fingerprint(str(moved)) != modeling.model_fingerprint(str(micro_model_dir))


def test_a_moved_checkout_finds_its_runs(micro_profile, micro_model_dir, tmp_path):
    pairs = micro_pairs(8)
    settings = training.RunSettings.from_profile("k", "full", micro_profile)
    moved = shutil.copytree(micro_model_dir, tmp_path / "elsewhere" / "tiny-flan-t5")
    assert (run_dir(dataclasses.replace(settings, model=str(moved)), pairs, micro_profile)
            == run_dir(settings, pairs, micro_profile))


def _crash_after(micro_profile, pairs, name: str) -> Path:
    from test_training import _Crash

    with pytest.raises(KeyboardInterrupt):
        training.train(name, "full", pairs, micro_profile, steps=6, n_checkpoints=3, callbacks=[_Crash(at=5)])
    return run_dir(training.RunSettings.from_profile(name, "full", micro_profile, 6), pairs,
                            micro_profile, 3)


def test_a_truncated_trainer_state_falls_back_to_the_previous_checkpoint(micro_profile):
    pairs = micro_pairs(16)
    path = _crash_after(micro_profile, pairs, "truncated")
    state = path / "checkpoint-4" / "trainer_state.json"
    state.write_text(state.read_text()[:40])  # cut short, as by a full disk
    assert training.last_checkpoint(path).name == "checkpoint-2"
    run = training.train("truncated", "full", pairs, micro_profile, steps=6, n_checkpoints=3)
    assert run.summary["resumed_from"] == "checkpoint-2"
    assert [step for step, _ in training.checkpoints(run.path)] == [2, 4, 6]


def test_a_leftover_final_partial_is_never_loaded_as_a_finished_run(micro_profile, capsys):
    pairs = micro_pairs(8)
    run = training.train("partial", "full", pairs, micro_profile, steps=2, n_checkpoints=1)
    (run.path / "final").rename(run.path / "final.partial")  # killed just before the final rename
    with pytest.raises(FileNotFoundError, match="No finished run"):
        training.load_run(run.path)
    capsys.readouterr()
    again = training.train("partial", "full", pairs, micro_profile, steps=2, n_checkpoints=1)
    assert "Loaded the cached run" not in capsys.readouterr().out
    assert (again.path / "final" / training.SUMMARY_FILE).exists()
    assert not (again.path / "final.partial").exists()


# --- budgets ----------------------------------------------------------------------------------------------

BAD_SETTINGS = {
    "negative steps": (dict(steps=-3), ["steps=-3", "1 to 1,000,000"]),
    "zero steps": (dict(steps=0), ["steps=0", "1 to 1,000,000"]),
    "endless steps": (dict(steps=10**30), ["steps=", "1 to 1,000,000"]),
    "zero learning rate": (dict(learning_rate=0), ["learning_rate=0", "above 0"]),
    "negative learning rate": (dict(learning_rate=-1e-3), ["learning_rate=-0.001", "above 0"]),
    "NaN learning rate": (dict(learning_rate=float("nan")), ["learning_rate=nan"]),
}


@pytest.mark.parametrize("case", BAD_SETTINGS, ids=list(BAD_SETTINGS))
def test_bad_budgets_are_refused_with_the_valid_range(case, micro_profile):
    arguments, words = BAD_SETTINGS[case]
    with pytest.raises(SettingError) as error:
        training.train("b", "full", micro_pairs(8), micro_profile, **arguments)
    for word in words:
        assert word in str(error.value)
    assert not (micro_profile.results_dir / "runs").exists(), "nothing is written for a refused run"


def test_a_zero_batch_size_is_refused(micro_profile):
    with pytest.raises(SettingError, match="batch_size=0.*1 to 4,096"):
        training.train("b", "full", micro_pairs(8), dataclasses.replace(micro_profile, batch_size=0), steps=2)


def test_too_many_checkpoints_are_refused(micro_profile):
    with pytest.raises(SettingError, match="n_checkpoints=-1"):
        training.train("b", "full", micro_pairs(8), micro_profile, steps=2, n_checkpoints=-1)


def test_an_empty_data_set_gets_the_courses_error(micro_profile):
    with pytest.raises(ValueError, match="train_data is empty"):
        training.train("e", "full", micro_pairs(8).select([]), micro_profile, steps=2)


#: Calls that pass the validation data (or None) where the profile goes: the run functions take
#: ``train_data, profile, eval_data``.
OTHER_ORDER = {
    "train": lambda s, pairs, validation, profile: training.train("o", "full", pairs, validation, profile, steps=2),
    "recipe_trainer": lambda s, pairs, validation, profile: training.recipe_trainer(s, pairs, validation, profile),
}


@pytest.mark.parametrize("call", OTHER_ORDER, ids=list(OTHER_ORDER))
def test_a_call_in_another_argument_order_is_refused_clearly(call, micro_profile):
    settings = training.RunSettings.from_profile("o", "full", micro_profile, 2)
    with pytest.raises(TypeError, match=r"profile must be the course's Profile .* got (Dataset|NoneType)\. "
                                        r"The run functions take \(\.\.\., train_data, profile"):
        OTHER_ORDER[call](settings, micro_pairs(8), micro_pairs(4, seed=1), micro_profile)
    assert not (micro_profile.results_dir / "runs").exists(), "nothing is written for a refused call"


def test_command_line_steps_are_checked(capsys, tmp_results):
    assert train.main(["--profile", "smoke", "--steps", "-3", "--no-score"]) == 2
    assert "steps=-3 is out of range" in capsys.readouterr().err
    assert not tmp_results.exists()


def test_endless_step_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_TRAIN_STEPS", str(10**30))
    with pytest.raises(SettingError, match="COURSE_TRAIN_STEPS=.*1 to 1,000,000"):
        get_profile("smoke")


@pytest.mark.parametrize(("typo", "meant"), [("COURSE_TRAIN_STEP", "COURSE_TRAIN_STEPS"),
                                              ("COURSE_RESULT_DIR", "COURSE_RESULTS_DIR"),
                                              ("COURSE_PROFLE", "COURSE_PROFILE")])
def test_a_misspelt_variable_is_refused_with_the_closest_name(monkeypatch, typo, meant):
    monkeypatch.setenv(typo, "5")
    with pytest.raises(ProfileError, match=f"{typo} \\(did you mean {meant}\\?\\)"):
        get_profile("smoke")


def test_an_unknown_variable_is_warned_about(monkeypatch):
    monkeypatch.setenv("COURSE_XYZZY_PLUGH", "1")
    monkeypatch.setattr(config, "_WARNED", set())
    with pytest.warns(UserWarning, match="COURSE_XYZZY_PLUGH"):
        get_profile("smoke")


# --- paths: relative paths are read where the command ran ---------------------------------------------------


def test_relative_paths_are_resolved_against_where_the_command_ran(tmp_path, micro_model_dir):
    shutil.copytree(micro_model_dir, tmp_path / "models" / "mine")
    environ = {"COURSE_RESULTS_DIR": "out/results", "COURSE_MODEL": "models/mine"}
    config.resolve_path_variables(environ, cwd=tmp_path)
    assert environ == {"COURSE_RESULTS_DIR": str(tmp_path / "out" / "results"),
                       "COURSE_MODEL": str(tmp_path / "models" / "mine")}
    hub_id = {"COURSE_MODEL": "google/flan-t5-small"}
    config.resolve_path_variables(hub_id, cwd=tmp_path)
    assert hub_id == {"COURSE_MODEL": "google/flan-t5-small"}, "a Hub id is not a path"


def test_the_course_kernels_see_relative_paths_from_where_the_course_ran(tmp_path, monkeypatch, micro_model_dir):
    """A kernel runs in its notebook's folder: metrics must still land where the user asked, and a local model
    folder must still be found there."""
    lessons = tmp_path / "notebooks"
    lessons.mkdir()
    cell = ("import os\nfrom pathlib import Path\nfrom utils import get_profile, results\n"
            "results.save_metrics('paths', {'model_found': Path(os.environ['COURSE_MODEL']).is_dir()}, get_profile())")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    nbformat.write(notebook, lessons / "00_paths.ipynb")
    monkeypatch.setattr(course, "course_notebooks", lambda: [lessons / "00_paths.ipynb"])
    shutil.copytree(micro_model_dir, tmp_path / "models" / "mine")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_PROFILE", "smoke")  # the runner sets it for its kernels; restored afterwards
    monkeypatch.setenv("COURSE_RESULTS_DIR", "my-results")
    monkeypatch.setenv("COURSE_MODEL", "models/mine")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(config.ROOT), os.environ.get("PYTHONPATH", "")]))
    course.run_course("smoke")
    metrics = json.loads((tmp_path / "my-results" / "smoke" / "metrics.json").read_text())
    assert metrics["paths"] == {"model_found": True}
    assert not (lessons / "my-results").exists(), "metrics landed in a second folder"


# --- read-only results and the runner's own errors --------------------------------------------------------


def test_a_cached_run_loads_from_a_read_only_results_folder(micro_profile, monkeypatch, capsys):
    pairs = micro_pairs(8)
    first = training.train("ro", "full", pairs, micro_profile, steps=2, n_checkpoints=1)

    def read_only(path):
        raise PermissionError(f"[Errno 13] Permission denied: '{path}'")

    monkeypatch.setattr(training, "locked", read_only)  # as in a read-only folder (tests run as root here)
    monkeypatch.setattr(training, "atomic_write_json", read_only)
    again = training.train("ro", "full", pairs, micro_profile, steps=2, n_checkpoints=1)
    assert "Loaded the cached run" in capsys.readouterr().out
    assert again.path == first.path


def test_the_lock_names_an_unwritable_results_folder(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be")
    with pytest.raises(PermissionError, match="COURSE_RESULTS_DIR"), results.locked(blocker / "x.lock"):
        pass


def test_the_runner_shows_the_notebooks_error_when_results_cannot_be_written(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('the real error')")])
    path = tmp_path / "00_fails.ipynb"
    nbformat.write(notebook, path)
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be")
    with pytest.raises(course.NotebookFailed, match="the real error"):
        course.execute_notebook(path, blocker / "notebooks")


def test_a_failing_notebook_is_still_saved_where_it_can_be(tmp_path):
    """The other side of the runner's fix: a writable results folder still gets the failed notebook."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('boom')")])
    path = tmp_path / "00_fails.ipynb"
    nbformat.write(notebook, path)
    with pytest.raises(course.NotebookFailed):
        course.execute_notebook(path, tmp_path / "out")
    assert "boom" in (tmp_path / "out" / "00_fails.ipynb").read_text()
