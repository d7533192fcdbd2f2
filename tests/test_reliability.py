"""Reliability, round three (issue 32): each case run the way a user meets it -- a real read-only folder, a real
relative path, a real corrupt file, a real full filesystem, a real notebook cell run again -- not by patching the
course's own functions."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import micro_pairs

from utils import config, training

#: Environment variables a subprocess must not inherit from the test session (caches, offline switches, profile).
_OWN_PREFIXES = ("HF_", "XDG_", "COURSE_", "TRANSFORMERS_", "HUGGINGFACE_")


def _python(code: str, *, cwd: Path, env: dict[str, str], drop_write_override: bool = False,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python with the course importable and only ``env`` of the course's variables.

    ``drop_write_override``: as root (how CI runs), drop the capability that lets root write where the permission
    bits say no, so that a read-only folder is read-only for real (``setpriv``, util-linux)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    clean.update(PYTHONPATH=str(config.ROOT), **env)
    command = [sys.executable, "-c", code]
    if drop_write_override and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override", *command]
    done = subprocess.run(command, cwd=cwd, env=clean, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


def _writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


# --- 1. a read-only results folder loads finished runs ---------------------------------------------------------


@pytest.mark.skipif(os.name != "posix" or shutil.which("setpriv") is None and os.geteuid() == 0,
                    reason="needs POSIX permissions (and setpriv when run as root)")
def test_a_read_only_results_folder_loads_its_finished_runs(micro_profile, tmp_path):
    """The data sets load (``datasets`` takes a lock in its cache) and the cached run loads, writing nothing."""
    pairs = micro_pairs(8)
    first = training.train("ro", "full", pairs, micro_profile, steps=2, n_checkpoints=1)
    results = Path(os.environ["COURSE_RESULTS_DIR"])
    fields = json.dumps(dataclasses.asdict(micro_profile))
    code = f"""
import json, os, dataclasses, sys
sys.path.insert(0, {str(config.ROOT / "tests")!r})
from conftest import micro_pairs
from utils import data, training
from utils.config import Profile
profile = Profile(**json.loads({fields!r}))
data.load_target(profile)
run = training.train("ro", "full", micro_pairs(8), profile, steps=2, n_checkpoints=1)
print("LOADED", run.path)
"""
    _read_only(results)
    try:
        done = _python(code, cwd=tmp_path, drop_write_override=True,
                       env={"COURSE_PROFILE": "smoke", "COURSE_RESULTS_DIR": str(results), "HOME": str(tmp_path)})
    finally:
        _writable(results)
    assert f"LOADED {first.path}" in done.stdout
    assert "Loaded the cached run" in done.stdout


# --- 2. a relative COURSE_RESULTS_DIR makes no second folder ------------------------------------------------


def test_a_relative_results_folder_is_read_from_where_the_command_ran(tmp_path):
    """``COURSE_RESULTS_DIR=rel-results python -m utils.course run --only 00``: the kernel runs in notebooks/, and
    nothing may appear there (the Hugging Face caches once did, relative to the kernel's folder)."""
    stray = config.NOTEBOOK_DIR / "rel-results"
    assert not stray.exists(), f"{stray} is left from an earlier run: delete it"
    try:
        _python("import sys; from utils import course; sys.exit(course.main(['run', '--profile', 'smoke', '--only', '00']))",
                cwd=tmp_path, env={"COURSE_RESULTS_DIR": "rel-results", "HOME": str(tmp_path)})
        assert not stray.exists(), "a second results folder appeared inside notebooks/"
    finally:
        shutil.rmtree(stray, ignore_errors=True)
    assert (tmp_path / "rel-results" / "smoke" / "metrics.json").exists()
    assert not any((tmp_path / "rel-results").glob("**/.hf-cache")), "the Hugging Face caches went into results/"


# --- 3. a lesson's cell run again after the whole lesson ran -------------------------------------------------


def _run_then_rerun(notebook: Path, monkeypatch, results: Path) -> list[tuple[int, str]]:
    """Execute ``notebook`` in the smoke profile, then run each code cell once more, last to first, in the same
    kernel, as a learner scrolling back up does. Returns ``(cell index, error)`` for each cell that failed then."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(results))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(config.ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    failures = []
    with client.setup_kernel():
        code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        for i in code:
            client.execute_cell(nb.cells[i], i)
        for i in reversed(code):
            try:
                client.execute_cell(nb.cells[i], i)
            except CellExecutionError as error:
                failures.append((i, str(error).strip().splitlines()[-1]))
    return failures


def test_every_cell_of_lesson_03_runs_again_after_the_whole_lesson(monkeypatch, tmp_path):
    """Re-running the lab-protocol cell once raised ``KeyError: 'references'``: a later cell had rebound the
    zero-shot outputs to a three-row frame."""
    notebook = config.NOTEBOOK_DIR / "03_single_task_finetuning.ipynb"
    assert _run_then_rerun(notebook, monkeypatch, tmp_path / "results") == []


# --- 4. a corrupt metrics.json or section file -------------------------------------------------------------


def _corrupt_run(results: Path) -> Path:
    """A smoke results folder whose metrics.json and one section were cut short mid-write."""
    folder = results / "smoke"
    (folder / "sections").mkdir(parents=True)
    (folder / "sections" / "zero_shot.json").write_text(json.dumps({"rouge1": 0.25, "n_dialogues": 16}))
    (folder / "sections" / "templates.json").write_text('{"best": {"rouge1": 0.')
    (folder / "metrics.json").write_text('{"zero_shot": {"rouge1": 0.2')
    (folder / "timings.json").write_text("{")
    return folder


def test_a_corrupt_metrics_file_is_rebuilt_from_its_sections(tmp_path):
    folder = _corrupt_run(tmp_path / "results")
    env = {"COURSE_RESULTS_DIR": str(tmp_path / "results"), "HOME": str(tmp_path)}
    report = _python("from utils import course; raise SystemExit(course.main(['report', '--profile', 'smoke']))",
                     cwd=tmp_path, env=env)
    assert "metrics.json was not valid JSON; rebuilt it" in report.stderr
    assert "templates.json was not valid JSON" in report.stderr and "templates.json.corrupt" in report.stderr
    assert json.loads((folder / "metrics.json").read_text()) == {"zero_shot": {"rouge1": 0.25, "n_dialogues": 16}}
    assert (folder / "sections" / "templates.json.corrupt").read_text() == '{"best": {"rouge1": 0.', "not kept"
    assert "zero_shot" in (folder / "report.md").read_text()
    # a lesson that reads an earlier lesson's numbers from metrics.json (lesson 04 reads lesson 03's)
    (folder / "metrics.json").write_text("\x00\x00")
    check = _python("from utils import config, results; print(results.load_metrics(config.get_profile('smoke')))",
                    cwd=tmp_path, env=env)
    assert "rebuilt it" in check.stderr and "Traceback" not in check.stderr
    assert "'zero_shot': {" in check.stdout


def test_saving_a_section_beside_a_corrupt_one_keeps_both_files(tmp_path, monkeypatch):
    from utils import results

    folder = _corrupt_run(tmp_path / "results")
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path / "results"))
    results.save_metrics("forgetting", {"qa": {"base": 0.5}}, config.get_profile("smoke"))
    assert set(json.loads((folder / "metrics.json").read_text())) == {"zero_shot", "forgetting"}
    assert (folder / "sections" / "templates.json.corrupt").exists()


# --- 5. a tokenizer that does not belong to its model ------------------------------------------------------


def _tiny_copy(folder: Path) -> Path:
    shutil.copytree(config.TINY_MODEL_DIR, folder, ignore=shutil.ignore_patterns("pretrained-only"))
    return folder


def test_a_tokenizer_with_its_pieces_shuffled_is_refused(tmp_path):
    import random

    from utils import modeling

    folder = _tiny_copy(tmp_path / "model")
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    random.Random(0).shuffle(tokenizer["model"]["vocab"])  # the same 5,125 pieces, in another order
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(modeling.ModelLoadError, match=r"does not belong to this model: <pad> is id \d+"):
        modeling.load_tokenizer(str(folder))


def test_a_broken_or_foreign_tokenizer_file_is_named(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from utils import modeling

    truncated = _tiny_copy(tmp_path / "truncated")
    text = (truncated / "tokenizer.json").read_text()
    (truncated / "tokenizer.json").write_text(text[: len(text) // 2])
    with pytest.raises(modeling.ModelLoadError, match=r"cannot be read \(JSONDecodeError.*cut short, broken"):
        modeling.load_tokenizer(str(truncated))
    bpe = _tiny_copy(tmp_path / "bpe")
    other = Tokenizer(models.BPE(unk_token="<unk>"))
    other.pre_tokenizer = pre_tokenizers.Whitespace()
    other.train_from_iterator(["a dialogue about a lost wallet"] * 10,
                              trainers.BpeTrainer(vocab_size=100, special_tokens=["<pad>", "</s>", "<unk>"]))
    other.save(str(bpe / "tokenizer.json"))
    with pytest.raises(modeling.ModelLoadError, match="another kind of tokenizer"):
        modeling.load_tokenizer(str(bpe))


# --- 7. files the course reuses are trusted only as it wrote them ---------------------------------------------


def test_an_edited_training_summary_is_refused_not_reported(micro_profile):
    pairs = micro_pairs(8)
    run = training.train("edited", "full", pairs, micro_profile, steps=2, n_checkpoints=1)
    path = run.path / "final" / training.SUMMARY_FILE
    summary = json.loads(path.read_text())
    summary["settings"]["learning_rate"] = 0.5  # by hand, in an editor
    path.write_text(json.dumps(summary, indent=2))
    with pytest.raises(training.RunFolderError, match=r"training_summary.json is not the summary this run saved"):
        training.train("edited", "full", pairs, micro_profile, steps=2, n_checkpoints=1)
    assert json.loads(path.read_text())["settings"]["learning_rate"] == 0.5, "the user's file was changed"
    again = training.train("edited", "full", pairs, micro_profile, steps=2, n_checkpoints=1, force=True)
    assert again.settings.learning_rate == micro_profile.lr_full


def _saved_zero_shot(profile, **changes):
    from utils import evaluation, results, scoring

    scores = {key: 0.2 for key in [*scoring.SCORE_KEYS, *evaluation.FACT_RECALL_KEYS]}  # as lesson 01 saves
    results.save_metrics("zero_shot", {**scores, "n_dialogues": 2, **scoring.zero_shot_setup(profile), **changes},
                         profile)
    return profile.results_dir / "sections" / "zero_shot.json"


def test_an_edited_zero_shot_score_is_measured_again_not_reused(micro_profile, capsys):
    from utils import results, scoring

    profile = dataclasses.replace(micro_profile, n_eval_dialogues=2)
    section = _saved_zero_shot(profile)
    assert scoring.saved_zero_shot(profile)["rouge1"] == 0.2
    edited = json.loads(section.read_text())
    edited["rouge1"] = 0.999
    section.write_text(json.dumps(edited))
    assert scoring.saved_zero_shot(profile) is None, "an edited score must not be reused"
    results.save_metrics("templates", {"n": 1}, profile)  # metrics.json shows the file as it is, with a note
    assert "changed after its lesson saved it" in capsys.readouterr().err
    assert results.load_metrics(profile)["zero_shot"]["rouge1"] == 0.999


def test_saved_scores_are_reused_only_by_the_scoring_code_that_made_them(micro_profile, micro_model_dir, monkeypatch):
    from utils import forgetting, modeling, scoring

    profile = dataclasses.replace(micro_profile, n_eval_dialogues=2)
    _saved_zero_shot(profile)
    assert scoring.saved_zero_shot(profile) is not None
    monkeypatch.setattr(scoring, "SCORING_CODE", "another version of the scoring code")
    assert scoring.saved_zero_shot(profile) is None
    model, tokenizer = modeling.load_model(profile), modeling.load_tokenizer(profile)
    calls = []
    monkeypatch.setattr(scoring, "_summarize", lambda model, tokenizer, dialogues, *a: (
        calls.append(1) or ["a summary"] * len(dialogues), []))
    first = forgetting.target_scores(model, tokenizer, profile)
    forgetting.target_scores(model, tokenizer, profile)
    assert len(calls) == 1
    monkeypatch.setattr(scoring, "SCORING_CODE", "yet another version")
    forgetting.target_scores(model, tokenizer, profile)
    assert len(calls) == 2, "new scoring code must summarize again"
    cached = max((profile.results_dir / "scores").glob("summaries-*.json"), key=lambda p: p.stat().st_mtime_ns)
    cached.write_text(cached.read_text().replace("a summary", "an edited summary"))  # an edited cache file
    assert forgetting.target_scores(model, tokenizer, profile) == first and len(calls) == 3


def test_the_scoring_code_fingerprint_covers_the_measures():
    from utils import evaluation, scoring

    assert scoring.SCORING_CODE == scoring.results.digest(
        path.read_bytes() for path in (Path(evaluation.__file__), Path(scoring.__file__),
                                       evaluation.ROUGE_DIR / "rouge.py"))


# --- 6. a full disk -----------------------------------------------------------------------------------------


class SmallDisk(type(Path())):
    """A mounted filesystem's folder, with :meth:`resize`."""

    def resize(self, mb: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={mb}m", str(self)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A real filesystem of 1 MiB (tmpfs), mounted for the test; ``resize(mb)`` grows it. Needs root, as CI runs."""
    mount = SmallDisk(tmp_path / "disk")
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here ({done.stderr.decode().strip()}); CI runs as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the filesystem of ``folder`` to the last byte with one file; return it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)
    return filler


def _weights(run) -> str:
    from utils import modeling

    return modeling.weights_fingerprint(run.model)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_run_whose_final_save_hit_a_full_disk_resumes_without_training_more(method, micro_profile, small_disk,
                                                                            monkeypatch, tmp_path):
    from transformers import TrainerCallback

    pairs = micro_pairs(16)
    reference = training.train("disk", method, pairs, micro_profile, steps=8, n_checkpoints=2)
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(small_disk / "results"))
    small_disk.resize(16)
    filled = []

    class FillTheDisk(TrainerCallback):  # the disk fills up as the last step ends, before the run is saved
        def on_train_end(self, args, state, control, **kwargs):
            filled.append(_fill(small_disk))

    with pytest.raises(training.DiskFullError, match=r"The disk is full: saving the run in .* Free some space"):
        training.train("disk", method, pairs, micro_profile, steps=8, n_checkpoints=2, callbacks=[FillTheDisk()])
    filled[0].unlink()
    again = training.train("disk", method, pairs, micro_profile, steps=8, n_checkpoints=2)
    assert [step for step, _ in training.checkpoints(again.path)] == [2, 4, 8], "no step after the last"
    assert again.summary["log_history"][-1]["train_loss"] == reference.summary["log_history"][-1]["train_loss"]
    assert _weights(again) == _weights(reference)


def test_a_checkpoint_that_hits_a_full_disk_says_so_and_the_run_resumes(micro_profile, small_disk, monkeypatch):
    pairs = micro_pairs(16)
    reference = training.train("disk", "full", pairs, micro_profile, steps=8, n_checkpoints=2)
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(small_disk / "results"))
    with pytest.raises(training.DiskFullError, match=r"The disk is full") as error:
        training.train("disk", "full", pairs, micro_profile, steps=8, n_checkpoints=2)
    assert "unexpected pos" not in str(error.value).split("the library said")[0]
    small_disk.resize(16)
    again = training.train("disk", "full", pairs, micro_profile, steps=8, n_checkpoints=2)
    assert _weights(again) == _weights(reference)


def test_the_runner_never_leaves_an_empty_notebook_on_a_full_disk(small_disk, capsys):
    import nbformat

    from utils import course

    path = small_disk.parent / "00_fails.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('x' * 200_000); raise ValueError('boom')")]), path)
    out = small_disk / "notebooks"
    out.mkdir()
    (out / path.name).write_text("the copy of an earlier run")
    _fill(small_disk)
    with pytest.raises(course.NotebookFailed, match="boom") as error:
        course.execute_notebook(path, out)
    assert (out / path.name).read_text() == "the copy of an earlier run"
    assert "could not be saved" in capsys.readouterr().err
    assert "The executed notebook with the error is" not in str(error.value)


# --- also: a template whose one call would build hundreds of megabytes --------------------------------------


@pytest.mark.parametrize("call", ["|replace('x', 'y' * 20000)", ".replace('x', 'y' * 20000)",
                                  "|replace('x', 'y' * 20000, 10)|replace('y', 'z' * 20000)"])
def test_a_template_is_refused_before_it_builds_a_huge_text(call, tmp_path):
    """The budget checks the size a call will build before the call, not the string after it."""
    import tracemalloc

    from utils import templates

    folder = tmp_path / "templates"
    folder.mkdir()
    jinja = "{{ ('x' * 20000)" + call + " }}{{ dialogue }} ||| {{ summary }}"
    (folder / "mytask.yaml").write_text("task: mytask\nfields: {dialogue: string, summary: string}\ntemplates:\n"
                                        f"  - name: my_template\n    jinja: {json.dumps(jinja)}\n")
    tracemalloc.start()
    try:
        with pytest.raises(templates.TemplateError, match="rendering budget"):
            templates.load_templates("mytask", directory=folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MB allocated before the refusal"


# --- also: a dialogue of more than 200,000 characters in the playground and in a file -------------------------


def _huge_dialogue() -> str:
    return "\n".join(f"#Person{1 + i % 2}#: Turn {i} of a very long call about the lamp." for i in range(6000))


def test_the_playground_summarizes_a_huge_dialogue_and_says_it_was_cut(micro_model_dir, micro_profile, capsys):
    from utils import modeling, playground

    dialogue = _huge_dialogue()
    assert len(dialogue) > 250_000
    tokenizer = modeling.load_tokenizer(str(micro_model_dir))
    table = playground.summarize_with({"base": modeling.load_model(str(micro_model_dir))}, dialogue,
                                      "summarize_following_conversation", tokenizer, micro_profile)
    assert len(table) == 1 and isinstance(table["summary"][0], str)
    assert "its middle was cut" in capsys.readouterr().out


def test_one_huge_dialogue_in_a_file_does_not_fail_the_others(micro_model_dir, micro_profile, tmp_path):
    from utils import modeling, playground

    rows = [{"id": "short", "dialogue": "#Person1#: A lamp, please.\n#Person2#: Here it is."},
            {"id": "huge", "dialogue": _huge_dialogue()}]
    source = playground.write_dialogues(rows, tmp_path / "in.jsonl")
    table = playground.summarize_file(modeling.load_model(str(micro_model_dir)),
                                      modeling.load_tokenizer(str(micro_model_dir)), source, tmp_path / "out.jsonl",
                                      micro_profile)
    assert list(table["id"]) == ["short", "huge"]
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[1])["dialogue"] == rows[1]["dialogue"]


def test_a_data_row_too_long_for_any_prompt_is_named_not_the_template():
    from utils import templates

    template = templates.get_template("dialogsum", "summarize_following_conversation")
    with pytest.raises(templates.TemplateError, match=r"Row id='r7' has a 'dialogue' of 250,000 characters"):
        template.render_source({"id": "r7", "dialogue": "x" * 250_000, "summary": "", "topic": ""})


# --- also: Ctrl-C during a course run --------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a process group, as a terminal's Ctrl-C does")
def test_ctrl_c_stops_the_course_with_one_line_and_the_next_run_goes_on(tmp_path):
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    env.update(PYTHONPATH=str(config.ROOT), COURSE_RESULTS_DIR=str(tmp_path / "results"), HOME=str(tmp_path))
    command = [sys.executable, "-m", "utils.course", "run", "--profile", "smoke", "--only", "01"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    lines = []
    while not any("[1/1]" in line for line in lines):
        lines.append(process.stdout.readline())
    time.sleep(8)  # the kernel is running the lesson's cells
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "Interrupted (Ctrl-C) in 01_zero_shot_baseline.ipynb" in err
    assert "Traceback" not in err and "Task exception" not in err, err[-3000:]
    leftover = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert leftover == [], "a kernel outlived the run"
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "results" / "smoke" / "metrics.json").read_text())["zero_shot"]["n_dialogues"]
