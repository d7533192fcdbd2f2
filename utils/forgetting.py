"""Probing models for forgetting: which skills of the base model (probes: question answering, topic and
sentiment labels, titles) survive fine-tuning on dialogue summarization. Scores are cached by a hash of the
weights and settings: asking again costs nothing, and a retrained model is never mistaken for an old one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from utils import data, evaluation, modeling, scoring, templates, training
from utils.config import Profile
from utils.data import PROBES


def _probe_settings(tokenizer, probe: str, profile: Profile, test) -> dict:
    return {"tokenizer": scoring.tokenizer_key(tokenizer), "rows": list(test),
            "template": templates.fingerprint(scoring.probe_template(probe)),
            "max_new_tokens": profile.max_new_tokens, "max_source_length": profile.max_source_length,
            "scoring_code": scoring.SCORING_CODE}


def probe_outputs(model, tokenizer, probe: str, profile: Profile) -> dict:
    """One probe's answers (``predictions``), each row's main score (``scores``), ``n_shortened``; cached."""
    test = data.probe_test(probe, profile)

    def compute():
        prompts = list(map(scoring.probe_template(probe).render_source, test))  # the template loaded once
        prompts, shortened = evaluation.fit_prompts(prompts, tokenizer, profile.max_source_length)
        predictions = evaluation.generate(model, tokenizer, prompts, profile, desc=f"Probe {probe}")
        return {"predictions": predictions, "n_shortened": len(shortened),
                "scores": [evaluation.score_probe(probe, [p], [row])["score"]
                           for p, row in zip(predictions, test, strict=True)]}

    settings = _probe_settings(tokenizer, probe, profile, test)
    return scoring.cached_scores(f"probe-examples-{probe}", model, settings, compute, profile)


def probe_scores(model, tokenizer, profile: Profile, probes: Sequence[str] = PROBES,
                 n: int | None = None) -> dict[str, dict]:
    """Every probe's scores for ``model`` (``main``: the main one) on ``n`` rows or the profile's, cached."""
    profile = profile if n is None else dataclasses.replace(profile, n_probe_eval=n)
    by_probe = {}
    for probe in probes:
        test = data.probe_test(probe, profile)

        def compute(probe=probe, test=test):
            outputs = probe_outputs(model, tokenizer, probe, profile)
            scores = evaluation.score_probe(probe, outputs["predictions"], list(test))
            return {**scores, "main": scores["score"], "n_shortened": outputs["n_shortened"]}

        settings = _probe_settings(tokenizer, probe, profile, test)
        by_probe[probe] = scoring.cached_scores(f"probe-{probe}", model, settings, compute, profile)
    return by_probe


def probe_example_scores(model, tokenizer, probe: str, profile: Profile, n: int | None = None) -> np.ndarray:
    """One probe's main score of each test row, cached (paired between models: :func:`paired_differences`)."""
    profile = profile if n is None else dataclasses.replace(profile, n_probe_eval=n)
    return np.asarray(probe_outputs(model, tokenizer, probe, profile)["scores"], dtype=float)


def paired_differences(a: Mapping[str, Sequence], b: Mapping[str, Sequence], seed: int = 0) -> pd.DataFrame:
    """``a`` minus ``b`` per probe (paired: :func:`utils.evaluation.paired_bootstrap`) and on ``average``
    (each probe resampled alone): ``mean_diff``, 95% ``ci_low``/``ci_high``, ``verdict`` ("a higher", ...)."""
    if missing := set(a) ^ set(b):
        raise ValueError(f"both models need the same probes; only one has {sorted(missing)}")
    rows = {probe: evaluation.paired_bootstrap(a[probe], b[probe], seed=seed) for probe in a}
    rng = np.random.default_rng(seed)
    diffs = [np.asarray(a[p], dtype=float) - np.asarray(b[p], dtype=float) for p in a]
    means = np.mean([[d[rng.integers(0, len(d), len(d))].mean() for d in diffs] for _ in range(1000)], axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    rows["average"] = {"mean_diff": float(np.mean([d.mean() for d in diffs])), "ci_low": float(low),
                       "ci_high": float(high)}
    table = pd.DataFrame.from_dict(rows, orient="index")[["mean_diff", "ci_low", "ci_high"]]
    table["verdict"] = ["a higher" if low > 0 else "b higher" if high < 0 else "can't tell"
                        for low, high in zip(table["ci_low"], table["ci_high"], strict=True)]
    return table


def target_scores(model, tokenizer, profile: Profile, template_name: str = scoring.EVAL_TEMPLATE,
                  n: int | None = None) -> dict:
    """:func:`utils.scoring.evaluate_summarization` (its summaries cached) on ``n`` dialogues, with each
    dialogue's ROUGE-1 (``rouge1_per_dialogue``)."""
    profile = profile if n is None else dataclasses.replace(profile, n_eval_dialogues=n)
    scores, table = scoring.evaluate_summarization(model, tokenizer, profile, template_name)
    return {**scores, "rouge1_per_dialogue": table["rouge1"].tolist()}


def target_example_scores(model, tokenizer, profile: Profile, n: int | None = None) -> np.ndarray:
    """Each target test dialogue's ROUGE-1 (:func:`target_scores`), to pair between models."""
    return np.asarray(target_scores(model, tokenizer, profile, n=n)["rouge1_per_dialogue"], dtype=float)


def probe_models(models: Mapping[str, object], tokenizer, profile: Profile) -> dict[str, dict[str, dict]]:
    """:func:`probe_scores` for every named model: ``{model name: {probe: scores}}``."""
    return {name: probe_scores(model, tokenizer, profile) for name, model in models.items()}


#: The fact measures a :func:`scoreboard` shows beside the target's ROUGE-1 (as ``target_<measure>``).
TARGET_FACT_MEASURES = ("fact_recall", "grounding")


def scoreboard(models: Mapping[str, object], tokenizer, profile: Profile,
               probes: Sequence[str] = PROBES, held_out: bool = True) -> pd.DataFrame:
    """One row per model, all cached: target ROUGE-1 (``target``) with its :data:`TARGET_FACT_MEASURES`, with
    the held-out template (``target_held_out``), each probe's main score and ``probe_average``."""
    held_out_name = templates.held_out_template(data.TARGET_TASK).name
    rows = {}
    for name, model in models.items():
        target = target_scores(model, tokenizer, profile)
        row = {"target": target["rouge1"],
               **{f"target_{key}": target[key] for key in TARGET_FACT_MEASURES if key in target}}
        if held_out:
            row["target_held_out"] = target_scores(model, tokenizer, profile, held_out_name)["rouge1"]
        by_probe = probe_scores(model, tokenizer, profile, probes)
        rows[name] = {**row, **{probe: scores["main"] for probe, scores in by_probe.items()},
                      "probe_average": _average_probe_score(by_probe)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def target_measures(board: pd.DataFrame, model: str) -> dict:
    """A model's ``rouge1`` and fact measures from a :func:`scoreboard`, for metrics.json."""
    row = board.loc[model]
    return {"rouge1": row["target"], **{key: row[f"target_{key}"] for key in TARGET_FACT_MEASURES
                                        if f"target_{key}" in board and pd.notna(row[f"target_{key}"])}}


def retention_table(board: pd.DataFrame) -> pd.DataFrame:
    """From a :func:`scoreboard`, per model: ``probe_retention`` (its probe average / the base's; NaN if 0)
    and ``target_gap`` (the ``full`` model's target ROUGE-1 minus its own)."""
    average = board.loc["base", "probe_average"]
    return pd.DataFrame({"probe_retention": board["probe_average"] / average if average > 0 else np.nan,
                         "target_gap": board.loc["full", "target"] - board["target"]}).drop(index=["base"])


def example_outputs(models: Mapping, tokenizer, probe: str, profile: Profile, n: int = 3) -> pd.DataFrame:
    """Each model's answers to a probe's first ``n`` test prompts, next to the expected answer."""
    test = data.probe_test(probe, profile)
    rows = test.select(range(min(n, len(test))))
    prompts, expected = zip(*map(scoring.probe_template(probe).render, rows), strict=True)
    return pd.DataFrame({"prompt": prompts, "expected": expected, **{
        name: evaluation.generate(model, tokenizer, list(prompts), profile, progress=False)
        for name, model in models.items()}})


# --- tables -------------------------------------------------------------------------------------------
def main_scores(results: Mapping[str, Mapping[str, dict]], metric: str = "main") -> pd.DataFrame:
    """One number per model and probe (``metric`` of each, the main score by default): probes x models."""
    return pd.DataFrame({name: {probe: s[metric] for probe, s in by_probe.items() if metric in s}
                         for name, by_probe in results.items()}).rename_axis("probe")


def drop_table(results: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """:func:`utils.evaluation.forgetting_table` of the main scores: scores and drops from ``base``."""
    return evaluation.forgetting_table(main_scores(results).to_dict())


def drops(table: pd.DataFrame, relative: bool = False) -> pd.DataFrame:
    """The drops of a :func:`drop_table` as models x probes (absolute, or ``relative`` to the base)."""
    suffix = " rel drop" if relative else " drop"
    columns = [c for c in table.columns if c.endswith(suffix) and (relative or not c.endswith(" rel drop"))]
    return table[columns].rename(columns=lambda c: c[: -len(suffix)]).T


def valid_label_shares(results: Mapping[str, Mapping[str, dict]]) -> pd.DataFrame:
    """Share of outputs that are a valid label at all (a wrong label or none?), label probes x models."""
    return main_scores({name: {p: s for p, s in by_probe.items() if data.get(p).has_labels}
                        for name, by_probe in results.items()}, metric="valid_label_share")


def _average_probe_score(results: Mapping[str, dict]) -> float:
    return float(np.mean([scores["main"] for scores in results.values()]))


# --- learning vs forgetting along a run ---------------------------------------------------------------
def learning_curve(run: training.TrainedRun, tokenizer, profile: Profile,
                   probes: Sequence[str] = PROBES) -> pd.DataFrame:
    """Target ROUGE-1 (``target_rouge1``) and each probe's main score at step 0 (the base), each saved
    checkpoint and the finished model, on 48 dialogues and 64 probe rows (at most the profile's); by step."""
    n_target, n_probe = min(48, profile.n_eval_dialogues or 48), min(64, profile.n_probe_eval or 64)
    points = [(0, lambda: modeling.load_model(run.settings.model)),
              *[(step, lambda f=folder: training.load_checkpoint(f, run.settings.method, run.settings.model))
                for step, folder in training.checkpoints(run.path) if step < run.settings.steps],
              (run.settings.steps, lambda: run.model)]
    rows = []
    for step, load in points:
        model = load()
        target = target_scores(model, tokenizer, profile, n=n_target)["rouge1"]
        by_probe = probe_scores(model, tokenizer, profile, probes, n=n_probe)
        rows.append({"step": step, "target_rouge1": target, **{p: s["main"] for p, s in by_probe.items()}})
    return pd.DataFrame(rows).set_index("step")


def curve_forgetting(curve: pd.DataFrame, probes: Sequence[str] = PROBES) -> pd.Series:
    """Per probe along a :func:`learning_curve`: best earlier score minus final one (positive: forgotten)."""
    return pd.Series({p: evaluation.max_minus_final(curve[p].tolist()) for p in probes if p in curve},
                     name="max earlier - final")


def forgetting_metrics(results: Mapping[str, Mapping[str, dict]]) -> dict:
    """metrics.json's ``forgetting``: ``<probe>.<model>`` (and ``valid_label_share`` for label probes),
    ``average.<model>``, ``average_drop`` from ``base`` and ``average_relative_drop`` (base average not 0)."""
    section: dict = {}
    for probe in results["base"]:
        section[probe] = {name: by_probe[probe]["main"] for name, by_probe in results.items()}
        if data.get(probe).has_labels:
            section[probe]["valid_label_share"] = {name: by_probe[probe]["valid_label_share"]
                                                   for name, by_probe in results.items()}
    section["average"] = {name: _average_probe_score(by_probe) for name, by_probe in results.items()}
    drops = {name: evaluation.forgetting_drop(section["average"]["base"], average)
             for name, average in section["average"].items() if name != "base"}
    section["average_drop"] = {name: drop["absolute"] for name, drop in drops.items()}
    if section["average"]["base"] > 0:
        section["average_relative_drop"] = {name: drop["relative"] for name, drop in drops.items()}
    return section
