"""Tests of the FLAN-style mixture builder (utils/mixture.py): rates, cap, templates, few-shot, replay."""

from __future__ import annotations

import dataclasses
import inspect
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset

from utils import mixture, templates
from utils.config import PROFILES
from utils.data import PROBES
from utils.mixture import MixtureError, MixtureSpec

TASKS = ("dialogsum", *PROBES)


def _rows(task: str, n: int) -> list[dict]:
    """``n`` small rows in a task's schema, each with a distinct id."""
    def row(i: int) -> dict:
        dialogue = f"#Person1#: Can I borrow item {i}?\n#Person2#: Yes, bring it back soon."
        return {
            "dialogsum": {"id": f"train_{i}", "dialogue": dialogue, "summary": f"#Person1# borrows item {i}.",
                          "topic": "borrowing"},
            "qa": {"id": f"qa_{i}", "context": dialogue, "question": "What is borrowed?", "answer": f"item {i}"},
            "topic": {"id": f"topic_{i}", "text": dialogue, "label": "borrowing",
                      "options": ["borrowing", "shopping"]},
            "sentiment": {"id": f"sentiment_{i}", "text": f"App {i} works well.", "label": "positive",
                          "options": ["negative", "positive"]},
            "title": {"id": f"title_{i}", "text": f"App {i} works well.", "title": f"Works {i}"},
        }[task]
    return [row(i) for i in range(n)]


@pytest.fixture(scope="module")
def splits():
    sizes = {"dialogsum": 400, "qa": 250, "topic": 250, "sentiment": 50, "title": 250}
    return {task: _rows(task, n) for task, n in sizes.items()}


@pytest.fixture(scope="module")
def profile():
    return dataclasses.replace(PROFILES["smoke"], train_steps=50, batch_size=10, max_source_length=200)


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def mix(splits, profile):
    return mixture.build_mixture(profile, MixtureSpec(cap=300, few_shot_share=0.25, target_share=None),
                                 splits=splits, count_tokens=words)


def test_rates_are_examples_proportional():
    rates = mixture.mixing_rates({"a": 300, "b": 100})
    assert rates == pytest.approx({"a": 0.75, "b": 0.25})


def test_cap_limits_large_tasks_only():
    rates = mixture.mixing_rates({"big": 10_000, "mid": 3000, "small": 1000}, cap=3000)
    assert rates == pytest.approx({"big": 3 / 7, "mid": 3 / 7, "small": 1 / 7})
    uncapped = mixture.mixing_rates({"big": 10_000, "mid": 3000, "small": 1000})
    assert uncapped["big"] > rates["big"]


@pytest.mark.parametrize("sizes,cap", [({"a": 0, "b": 5}, None), ({}, None), ({"a": 5}, 0)])
def test_bad_sizes_or_cap_are_refused(sizes, cap):
    with pytest.raises(MixtureError):
        mixture.mixing_rates(sizes, cap)


def test_fixed_rates_and_the_rest_shared_by_size():
    rates = mixture.mixing_rates({"target": 4000, "a": 3000, "b": 1000}, cap=2000, fixed={"target": 0.6})
    assert rates == pytest.approx({"target": 0.6, "a": 0.4 * 2 / 3, "b": 0.4 / 3})


@pytest.mark.parametrize("fixed", [{"nope": 0.5}, {"a": 0.0}, {"a": 1.2}, {"a": 0.6, "b": 0.6}, {"a": 0.5, "b": 0.4}])
def test_bad_fixed_rates_are_refused(fixed):
    with pytest.raises(MixtureError, match="Fixed rates"):
        mixture.mixing_rates({"a": 10, "b": 10}, fixed=fixed)


def test_target_share_gives_the_target_its_share(splits, profile):
    spec = MixtureSpec(cap=300, few_shot_share=0.0, target_share=0.7)
    mix = mixture.build_mixture(profile, spec, splits=splits, count_tokens=words)
    counts = Counter(mix["task"])
    assert counts["dialogsum"] == round(0.7 * len(mix))
    assert counts["sentiment"] / counts["qa"] == pytest.approx(50 / 250, rel=0.1)  # the rest: by size
    # a mixture without the target task (the tiny model's build) mixes by size alone
    assert MixtureSpec(tasks=("qa", "sentiment")).rates({"qa": 250, "sentiment": 50}) == pytest.approx(
        mixture.mixing_rates({"qa": 250, "sentiment": 50}, cap=3000))


def test_allocate_sums_exactly_and_follows_rates():
    counts = mixture.allocate(1001, {"a": 0.5, "b": 0.3, "c": 0.2})
    assert sum(counts.values()) == 1001
    assert all(abs(counts[t] - 1001 * r) < 1 for t, r in {"a": 0.5, "b": 0.3, "c": 0.2}.items())


def test_mixture_has_the_budget_and_the_rates(mix, splits, profile):
    assert len(mix) == profile.train_steps * profile.batch_size
    expected = mixture.allocate(len(mix), mixture.mixing_rates({t: len(splits[t]) for t in TASKS}, cap=300))
    assert Counter(mix["task"]) == expected
    # the cap: dialogsum's 400 rows count as 300; the small sentiment task keeps its proportion
    counts = Counter(mix["task"])
    assert counts["dialogsum"] / counts["qa"] == pytest.approx(300 / 250, rel=0.05)
    assert counts["sentiment"] / counts["qa"] == pytest.approx(50 / 250, rel=0.1)


def test_columns_and_shuffled_tasks(mix):
    assert tuple(mix.column_names) == mixture.COLUMNS
    first = mix["task"][:50]
    assert len(set(first)) > 2  # tasks interleave rather than come in blocks


def test_held_out_templates_are_never_used(mix):
    used = {(task, name) for task, name in zip(mix["task"], mix["template"], strict=True)}
    for task in TASKS:
        held_out = templates.held_out_template(task).name
        assert (task, held_out) not in used
        allowed = {t.name for t in templates.training_templates(task, include_inverted=False)}
        assert {name for t, name in used if t == task} <= allowed
    # several templates per task are used
    assert all(len({name for t, name in used if t == task}) >= 3 for task in TASKS)


def test_inverted_templates_only_when_asked(splits, profile):
    spec = MixtureSpec(cap=300, few_shot_share=0.0, include_inverted=True)
    mix = mixture.build_mixture(profile, spec, splits=splits, count_tokens=words)
    inverted = {t.name for task in TASKS for t in templates.load_templates(task) if t.inverted}
    assert inverted & set(mix["template"])


def test_few_shot_share_and_shots_never_include_the_query(mix, splits):
    few = mix.filter(lambda r: r["format"] == mixture.FEW_SHOT)
    assert 0.2 < len(few) / len(mix) < 0.3
    ids = {task: {row["id"] for row in rows} for task, rows in splits.items()}
    for row in few:
        assert row["row_id"] not in row["shot_ids"]
        assert 1 <= row["n_shots"] == len(row["shot_ids"]) == len(set(row["shot_ids"])) <= 2
        assert set(row["shot_ids"]) <= ids[row["task"]]  # shots from the same task's train split
    zero = mix.filter(lambda r: r["format"] == mixture.ZERO_SHOT)
    assert all(n == 0 for n in zero["n_shots"]) and not any(zero["shot_ids"])


def test_few_shot_prompts_fit_or_fall_back_to_zero_shot(splits, profile):
    tight = dataclasses.replace(profile, max_source_length=25)  # one dialogue prompt fits, two do not
    mix = mixture.build_mixture(tight, MixtureSpec(cap=300, few_shot_share=1.0), splits=splits,
                                count_tokens=words)
    few = mix.filter(lambda r: r["format"] == mixture.FEW_SHOT)
    assert all(words(source) <= 25 for source in few["source"])
    assert mixture.ZERO_SHOT in set(mix.filter(lambda r: r["task"] == "dialogsum")["format"])


def test_sample_rows_repeats_only_after_a_full_pass():
    rng = np.random.default_rng(0)
    once = mixture.sample_rows(10, 10, rng)
    assert sorted(once) == list(range(10))
    twice = mixture.sample_rows(10, 15, rng)
    assert Counter(Counter(twice).values()) == Counter({1: 5, 2: 5})


def test_spec_validation():
    with pytest.raises(MixtureError):
        MixtureSpec(few_shot_share=1.5)
    with pytest.raises(MixtureError):
        MixtureSpec(cap=0)
    with pytest.raises(MixtureError, match="target_share"):
        MixtureSpec(target_share=1.0)


def test_composition_counts_each_task_and_format(mix):
    table = mixture.composition(mix)
    assert table["total"].sum() == len(mix)
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.loc["dialogsum", "few_shot"] == sum(
        1 for t, f in zip(mix["task"], mix["format"], strict=True) if t == "dialogsum" and f == "few_shot")


def test_multitask_run_uses_the_single_task_base_and_budget(micro_profile, monkeypatch):
    from utils import finetuning, training

    calls = []
    signature = inspect.signature(training.train)  # each call's arguments by name, however passed
    monkeypatch.setattr(training, "train",
                        lambda *args, **kwargs: calls.append(signature.bind(*args, **kwargs).arguments))
    finetuning.single_task_run("full", micro_profile)
    mixture.multitask_run(micro_profile)
    single, multi = calls
    required = {"name", "method", "train_data", "profile"}
    assert multi["method"] == "full" and multi["profile"] == micro_profile  # same base model
    assert set(multi) - required <= set(single) - required | {"force"}, multi  # same budget: nothing overridden
    assert not {"steps", "learning_rate", "batch_size"} & set(multi)
    assert len(multi["train_data"]) == micro_profile.train_steps * micro_profile.batch_size
    assert set(multi["train_data"]["task"]) == set(TASKS)
    assert multi["name"] == "multitask_full"
    assert multi.get("eval_data") is None  # lesson 05 scores the end only


def test_multitask_section_holds_what_metrics_json_promises():
    """Lesson 05's section: ``multitask.target.rouge1``, ``multitask.probes.<probe>`` (DESIGN.md), retention
    against the base model, the gap to single-task full fine-tuning, and each replay run's scores."""
    import pandas as pd

    board = pd.DataFrame({
        "target": [0.2, 0.7, 0.6, 0.65], "target_fact_recall": [0.1, 0.5, 0.4, 0.45],
        "target_held_out": [0.15, 0.6, 0.55, 0.6], **{probe: [0.8, 0.3, 0.7, 0.6] for probe in PROBES},
        "probe_average": [0.8, 0.3, 0.7, 0.6]}, index=["base", "full", "multitask", "replay_5%"])
    mix = Dataset.from_list([{"task": task, "format": mixture.ZERO_SHOT, "template": "t"}
                             for task in ("dialogsum", "dialogsum", *PROBES)])
    spec = MixtureSpec(tasks=TASKS, cap=3000, target_share=0.6)
    section = mixture.multitask_section(board, mix, spec, (0.05,))
    assert section["target"] == {"rouge1": 0.6, "fact_recall": 0.4, "held_out_template_rouge1": 0.55}
    assert section["probes"] == dict.fromkeys(PROBES, 0.7) and section["probe_average"] == 0.7
    assert section["probe_retention"] == pytest.approx(0.7 / 0.8)
    assert section["target_gap_to_single_task_full"] == pytest.approx(0.1)
    assert section["replay"]["5pct"]["ratio"] == 0.05 and section["replay"]["5pct"]["target"]["rouge1"] == 0.65
    assert section["mixture"]["n_examples"] == len(mix) and section["mixture"]["share"]["dialogsum"] == 2 / len(mix)
    assert set(section["summary"]) == set(board.index)


def _lesson_05_cell(marker: str) -> str:
    import nbformat

    from utils.course import NOTEBOOK_DIR

    cells = [c.source for c in nbformat.read(NOTEBOOK_DIR / "05_multitask_instruction_tuning.ipynb", as_version=4).cells
             if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, f"lesson 05: {len(cells)} cells contain {marker!r}"
    return cells[0]


def test_lesson_05_builds_in_its_cells_the_data_build_mixture_gives(splits, profile, monkeypatch):
    """Lesson 05 builds its mixtures in the open; the CLI, the tiny build and the playground call the function.
    Both must be the same data, or a run trained by one would not be found by the other. Its replay data is the
    single-task data, all of it, plus the given share of zero-shot probe data."""
    import datasets
    import pandas as pd

    from utils import data, finetuning

    single = templates.apply_template(Dataset.from_list(splits["dialogsum"]),
                                      templates.training_templates("dialogsum", include_inverted=False))
    monkeypatch.setattr(mixture, "task_train_split", lambda task, _profile: splits[task])
    monkeypatch.setattr(mixture, "token_counter", lambda _profile: words)
    monkeypatch.setattr(finetuning, "summarization_training_data", lambda _profile: single)
    sizes = {task: len(rows) for task, rows in splits.items()}
    spec = MixtureSpec(tasks=TASKS, cap=300, target_share=0.6, seed=profile.seed)
    names = {"datasets": datasets, "np": np, "pd": pd, "data": data, "mixture": mixture, "templates": templates,
             "finetuning": finetuning, "profile": profile, "TASKS": TASKS, "PROBES": PROBES, "CAP": 300,
             "TARGET_SHARE": 0.6, "counts": mixture.allocate(mixture.budget_examples(profile), spec.rates(sizes))}
    exec(_lesson_05_cell("mix = datasets.concatenate_datasets"), names)
    built = mixture.build_mixture(profile, names["spec"], splits=splits, count_tokens=words)
    assert names["spec"] == dataclasses.replace(spec, few_shot_share=names["FEW_SHOT_SHARE"], max_shots=names["MAX_SHOTS"])
    assert names["mix"].to_list() == built.to_list() and len(built) == mixture.budget_examples(profile)
    exec(_lesson_05_cell("def replay_data("), names)
    for ratio in (0.05, 0.2, 0.5):
        replay = names["replay_data"](ratio)
        tasks = Counter(replay["task"])
        assert tasks["dialogsum"] == len(single)
        assert (len(replay) - tasks["dialogsum"]) / len(replay) == pytest.approx(ratio, abs=2 / len(replay))
        assert {t for t in tasks if t != "dialogsum"} == set(PROBES)
        target_rows = replay.filter(lambda r: r["task"] == "dialogsum")
        assert sorted(target_rows["source"]) == sorted(single["source"])
        assert set(replay["format"]) == {mixture.ZERO_SHOT}


def test_lesson_05_trainers_are_the_runs_the_playground_and_the_cli_train(micro_profile, monkeypatch):
    """Lesson 05 builds its two trainers in cells; ``mixture.multitask_run`` (the playground, lesson 06,
    ``python -m utils.train``) builds it with ``training.recipe_trainer``. Same key, same run."""
    import contextlib
    from types import SimpleNamespace

    from conftest import micro_pairs

    from utils import finetuning, modeling, training

    trainers = []

    @contextlib.contextmanager
    def capture(trainer, force=False, keyed=True):
        trainers.append(trainer)
        yield SimpleNamespace(needs_training=False, resume_from=None, result=f"run {len(trainers)}")

    monkeypatch.setattr(training, "cached_run", capture)
    monkeypatch.setattr(finetuning, "single_task_run", lambda *args, **kwargs: "lesson 03's run")
    pairs = micro_pairs(16)
    names = {"profile": micro_profile, "modeling": modeling, "finetuning": finetuning, "training": training,
             "mix": pairs, "replay_mixes": {0.05: pairs}}
    exec(_lesson_05_cell("multi_trainer = Seq2SeqTrainer("), names)
    exec(_lesson_05_cell("replay_trainer = Seq2SeqTrainer("), names)
    assert names["multi"] == "run 1" and names["replays"] == {0.05: "run 2"}
    for trainer, name in zip(trainers, ("multitask_full", "replay_5pct_full"), strict=True):
        recipe = training.recipe_trainer(training.RunSettings.from_profile(name, "full", micro_profile), pairs,
                                         micro_profile)
        assert training.run_key(trainer) == training.run_key(recipe), name
        assert Path(trainer.args.output_dir).name == name
