"""Dialogues the generator did not write: does a model summarize them by reading, or by recognizing a scene?

Two evaluation sets, kept out of every mixture (see their READMEs):

* ``data/handwritten/test.jsonl`` -- everyday dialogues written by hand for this project, outside
  ``utils/world``, each with the key facts a good summary states;
* ``data/dialogsum_real/test.jsonl`` -- the real DialogSum test dialogues that the reference labs print, with
  key facts from their human summaries.

Every model is scored as lesson 01 scores it (zero-shot, the ``summarize_following_conversation`` prompt and
the profile's generation config, :func:`utils.scoring.summarize`), beside lead-2 (the dialogue's first two
lines). Per set and model: mean fact recall (:func:`utils.evaluation.fact_recall`) with its 95% bootstrap interval,
grounding (the share of a summary's numbers, times, names and tags found in the dialogue), **invented names**
(capitalized names in the summary that the dialogue does not contain, :func:`utils.scoring.invented_names`) per summary,
and ROUGE-1 against the human summaries. Fine-tuned runs the course has left under ``results/<profile>/runs/``
are scored too.

    OMP_NUM_THREADS=1 python -m benchmarks.outside_dialogues              # the committed tiny model, lead-2, runs
    python -m benchmarks.outside_dialogues --model path/to/model --show 3 # another model too; example outputs
    python -m benchmarks.outside_dialogues --profile full                 # google/flan-t5-base (needs the Hub)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from utils import evaluation, modeling, scoring, training
from utils.config import PROFILES, Profile

LEAD_LINES = 2


def score(predictions: list[str], rows: list[dict], seed: int) -> dict:
    """Fact recall and grounding with their 95% intervals, invented names per summary, ROUGE-1 and length."""
    dialogues = [row["dialogue"] for row in rows]
    scores = evaluation.score_facts(predictions, dialogues, [row["facts"] for row in rows], seed=seed)
    invented = [scoring.invented_names(p, d) for p, d in zip(predictions, dialogues, strict=True)]
    references = [row.get("summaries") or [row["summary"]] for row in rows]
    rouge1 = evaluation.rouge_per_example(predictions, references)["rouge1"]
    return {**scores, "n": len(rows), "invented_names_per_summary": float(np.mean([len(i) for i in invented])),
            "invented_names": [i for i in invented], "rouge1": float(rouge1.mean()),
            "gen_len_words": float(np.mean([len(p.split()) for p in predictions]))}


def finished_runs(profile: Profile) -> list[Path]:
    """The finished training runs under ``results/<profile>/runs/`` (none before the course has run)."""
    folder = profile.results_dir / "runs"
    return sorted(p for p in folder.glob("*/*") if training.is_finished(p)) if folder.is_dir() else []


def models_to_score(profile: Profile, extra: list[str]) -> list[tuple[str, object]]:
    """(label, loader) for the profile's base model, each finished run and each ``extra`` model folder."""
    base = Path(profile.model).name
    models = [(f"{base} (zero-shot)", lambda: modeling.load_model(profile.model))]
    models += [(f"run {run.parent.name}/{run.name}", lambda run=run: training.load_run(run).model) for run in finished_runs(profile)]
    models += [(Path(name).name, lambda name=name: modeling.load_model(name)) for name in extra]
    return models


def measure(profile: Profile, extra: list[str]) -> dict:
    """Outputs and scores of lead-2 and every model on both sets: {set: {label: {"outputs", "scores"}}}."""
    sets = {name: scoring.outside_dialogues(name) for name in scoring.OUTSIDE_SETS}
    results: dict = {name: {} for name in sets}
    for name, rows in sets.items():
        lead = evaluation.lead_summaries([row["dialogue"] for row in rows], LEAD_LINES)
        results[name][f"lead-{LEAD_LINES}"] = {"outputs": lead, "scores": score(lead, rows, profile.seed)}
    tokenizer = modeling.load_tokenizer(profile.model)
    for label, load in models_to_score(profile, extra):
        model = load()
        for name, rows in sets.items():
            outputs = scoring.summarize(model, tokenizer, [row["dialogue"] for row in rows], profile,
                                        desc=f"{label[:30]}, {name}")
            results[name][label] = {"outputs": outputs, "scores": score(outputs, rows, profile.seed)}
        del model
    return results


def table(results: dict) -> str:
    """The scores as one markdown table."""
    lines = ["| set | model | dialogues | fact recall [95% CI] | grounding | invented names / summary | ROUGE-1 "
             "| words |", "|---|---|---|---|---|---|---|---|"]
    for name, by_model in results.items():
        for label, result in by_model.items():
            s = result["scores"]
            lines.append(f"| {name} | {label} | {s['n']} | {s['fact_recall']:.3f} [{s['fact_recall_ci_low']:.3f}, "
                         f"{s['fact_recall_ci_high']:.3f}] | {s['grounding']:.3f} | "
                         f"{s['invented_names_per_summary']:.2f} | {s['rouge1']:.3f} | {s['gen_len_words']:.1f} |")
    return "\n".join(lines)


def examples(results: dict, n: int) -> str:
    """The first ``n`` dialogues' key facts and every model's output, with the facts it misses."""
    blocks = []
    for name, by_model in results.items():
        for i, row in enumerate(scoring.outside_dialogues(name)[:n]):
            lines = [f"### {row['id']} ({row['topic']}): facts {row['facts']}", f"human: {row['summary']}"]
            for label, result in by_model.items():
                output = result["outputs"][i].replace("\n", " / ")
                missed = evaluation.missed_facts(result["outputs"][i], row["facts"])
                invented = result["scores"]["invented_names"][i]
                lines.append(f"{label}: {output}  [misses {missed}; invented names {invented}]")
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="tiny", choices=list(PROFILES),
                        help="whose model, decoding and results/ runs (default: tiny, the committed model)")
    parser.add_argument("--model", action="append", default=[], help="another model folder to score (repeatable)")
    parser.add_argument("--show", type=int, default=0, help="print the outputs for the first N dialogues of each set")
    parser.add_argument("--json", type=Path, help="also write the outputs and scores to this file")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    results = measure(profile, args.model)
    print(f"\nZero-shot, prompt {scoring.EVAL_TEMPLATE!r}, {profile.max_new_tokens} new tokens, greedy; "
          f"profile {profile.name}.\n")
    print(table(results))
    if args.show:
        print("\n" + examples(results, args.show))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nWrote {args.json}")


if __name__ == "__main__":
    main()
