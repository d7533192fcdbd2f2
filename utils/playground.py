"""Putting it all together (lesson 06): try the course's models side by side, ship one, use it on a file."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import ipywidgets as widgets
import pandas as pd
import torch
from IPython.display import display

from utils import data, evaluation, finetuning, mixture, modeling, prompting, scoring, templates, training
from utils.config import Profile, shown_path


def course_models(profile: Profile) -> dict[str, object]:
    """The base model and the single-task full, single-task LoRA and multi-task fine-tunes (cached runs)."""
    return {"base": modeling.load_model(profile), "full": finetuning.single_task_run("full", profile).model,
            "lora": finetuning.single_task_run("lora", profile).model,
            "multi-task": mixture.multitask_run(profile).model}


def _readable(dialogue: str) -> str:
    """``dialogue``, its middle cut (marked ``...``) when longer than a quarter of the render budget."""
    longest = templates.MAX_RENDER_CHARS // 4
    half = longest // 2
    return dialogue if len(dialogue) <= longest else f"{dialogue[:half]}\n...\n{dialogue[-half:]}"


def summary_prompt(dialogue: str, template_name: str = scoring.EVAL_TEMPLATE) -> str:
    """The prompt a summarization template makes of one dialogue (of any length: see :func:`_readable`)."""
    template = templates.get_template(data.TARGET_TASK, template_name)
    return template.render_source({"id": "", "dialogue": _readable(dialogue), "summary": "", "topic": ""})


def summarize_with(models: Mapping[str, object], dialogue: str, template_name: str, tokenizer,
                   profile: Profile) -> pd.DataFrame:
    """A table (``model``, ``summary``) of one ``dialogue`` summarized by each of ``models``: the playground's
    callback, a plain function, so it runs (and is tested) without a widget."""
    if not (dialogue := (dialogue or "").strip()):
        raise ValueError("The dialogue is empty: paste a conversation, one turn per line ('#Person1#: Hi!').")
    if not models:
        raise ValueError("No model chosen: pick at least one (e.g. base and full).")
    if template_name not in (names := [t.name for t in prompting.summary_templates()]):
        raise ValueError(f"Unknown template {template_name!r}; choose one of {names}.")
    prompt = fitted_prompt(dialogue, template_name, tokenizer, profile)
    rows = [{"model": name, "summary": evaluation.generate(model, tokenizer, [prompt], profile, progress=False)[0]}
            for name, model in models.items()]
    return pd.DataFrame(rows)


def fitted_prompt(dialogue: str, template_name: str, tokenizer, profile: Profile) -> str:
    """The prompt for one dialogue, fitted by :func:`utils.evaluation.fit_prompts`; says so when it cuts."""
    prompts, shortened = evaluation.fit_prompts([summary_prompt(dialogue, template_name)], tokenizer,
                                                profile.max_source_length, warn=False)  # said below, in plain words
    if shortened:
        print(f"Note: this dialogue is longer than the model reads ({profile.max_source_length} tokens with the "
              "instruction); its middle was cut (marked '...') so that the instruction and the cue stay whole.")
    return prompts[0]


class _SideBySide:
    """:func:`summarize_with`'s ``table`` with whole summaries, left-aligned (pandas cuts and right-aligns):
    HTML in a notebook, one line per model in plain text. Leave it last in a cell."""

    def __init__(self, table: pd.DataFrame):
        self.table = table

    def _repr_html_(self) -> str:
        left = [("text-align", "left"), ("vertical-align", "top")]
        return (self.table.style.hide(axis="index").format(escape="html")
                .set_properties(**{"text-align": "left", "white-space": "pre-wrap"})
                .set_properties(subset=["model"], **{"white-space": "nowrap"})  # "multi-task" on one line
                .set_table_styles([{"selector": "th", "props": left}, {"selector": "td", "props": left}])
                .to_html())

    def __repr__(self) -> str:
        width = max((len(str(name)) for name in self.table["model"]), default=0)
        return "\n".join(f"{str(row.model):<{width}}  {row.summary}" for row in self.table.itertuples())


side_by_side = _SideBySide


def playground(models: Mapping[str, object], tokenizer, profile: Profile, dialogue: str = ""):
    """An ipywidgets panel: a dialogue box, model and template pickers, and a button that shows
    :func:`summarize_with`'s table (at once, given a ``dialogue``). Leave it last in a cell to display it."""
    text = widgets.Textarea(value=dialogue, placeholder="#Person1#: ...\n#Person2#: ...",
                            description="Dialogue", layout=widgets.Layout(width="95%", height="160px"))
    chosen = widgets.SelectMultiple(options=list(models), value=tuple(models), description="Models")
    names = [t.name for t in prompting.summary_templates()]
    template = widgets.Dropdown(options=names, value=scoring.EVAL_TEMPLATE, description="Template",
                                layout=widgets.Layout(width=f"{max(map(len, names)) + 14}ch"))
    button, output = widgets.Button(description="Summarize", button_style="primary"), widgets.Output()
    panel = _Panel([text, widgets.HBox([chosen, template]), button, output])

    def on_click(_):
        output.clear_output()
        with output:
            try:
                picked = {name: models[name] for name in chosen.value}
                panel.last = side_by_side(summarize_with(picked, text.value, template.value, tokenizer, profile))
                panel.last_template = template.value
                display(panel.last)
            except ValueError as error:
                print(error)

    button.on_click(on_click)
    if dialogue.strip():
        on_click(None)
    return panel


class _Panel(widgets.VBox):
    """The playground's VBox; a saved copy shows what it is and the last table it showed."""

    last: _SideBySide | None = None
    last_template: str = ""

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        table = self.last
        shown = f" It showed, with the template {self.last_template!r}:" if table is not None else ""
        note = ("[The playground: a dialogue box, model and template pickers and a Summarize button; "
                f"it needs a live kernel, so run the notebook to use it.]{shown}")
        bundle["text/plain"] = note + (f"\n{table!r}" if table is not None else "")
        bundle["text/html"] = (f"<p><em>{html.escape(note)}</em></p>"
                               + (table._repr_html_() if table is not None else ""))
        return bundle


def same_logits(model_a, model_b, tokenizer, prompts: Sequence[str],
                max_source_length: int = evaluation.DEFAULT_MAX_SOURCE_LENGTH) -> bool:
    """Whether two models give the same next-token scores on ``prompts`` (fitted, teacher-forced, 8 steps)."""
    prompts = evaluation.fit_prompts(prompts, tokenizer, max_source_length, warn=False)[0]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    decoder = torch.full((len(prompts), 8), model_a.config.decoder_start_token_id, dtype=torch.long)
    with torch.inference_mode():
        a, b = (model(**batch, decoder_input_ids=decoder).logits for model in (model_a, model_b))
        return bool(torch.allclose(a, b, atol=1e-4))


def round_trip(name: str, model, folder: str | Path, tokenizer, dialogues: Sequence[str],
               profile: Profile, method: str = "full", base_model: str | None = None) -> dict:
    """Reload ``folder`` and compare it with ``model`` in memory: same summaries, same next-token scores?
    ``method='lora'`` reloads an adapter folder onto ``base_model``."""
    reloaded = training.load_checkpoint(folder, method, base_model or profile.model)
    before = scoring.summarize(model, tokenizer, list(dialogues), profile, desc=f"{name} (in memory)")
    after = scoring.summarize(reloaded, tokenizer, list(dialogues), profile, desc=f"{name} (reloaded)")
    prompts = [summary_prompt(d) for d in dialogues[:4]]
    return {"model": name, "folder": shown_path(folder), "same_summaries": before == after,
            "same_logits": same_logits(model, reloaded, tokenizer, prompts, profile.max_source_length),
            "size_mb": round(modeling.folder_size_mb(folder), 2)}


def read_dialogues(path: str | Path) -> list[dict]:
    """``[{"id", "dialogue"}]`` from JSONL (``dialogue``, maybe ``id``) or text (blank-line separated)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; give a .jsonl or .txt file of dialogues.")
    if path.suffix == ".jsonl":
        rows = data.read_jsonl(path, ("dialogue",), advice='Each line must be an object like {"id": "d1", '
                                                             '"dialogue": "#Person1#: ..."}.')
    else:
        text = data.read_utf8(path, advice="Give a plain-text file with dialogues separated by blank lines.")
        rows = [{"dialogue": block.strip()} for block in text.split("\n\n") if block.strip()]
    if not rows:
        raise ValueError(f"{path} holds no dialogues; put one per JSONL line, or separate them by blank lines.")
    if empty := [i for i, row in enumerate(rows, start=1) if not row["dialogue"].strip()]:
        raise ValueError(f"{path}: the dialogue of row {empty[0]} is empty; fill it in or drop the row.")
    return [{"id": str(row.get("id", f"{path.stem}_{i}")), "dialogue": row["dialogue"]}
            for i, row in enumerate(rows)]


def write_dialogues(dialogues, path: str | Path) -> Path:
    """Write rows with ``id`` and ``dialogue`` as a JSONL file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": row["id"], "dialogue": row["dialogue"]}, ensure_ascii=False) for row in dialogues]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def summarize_file(model, tokenizer, path: str | Path, out_path: str | Path, profile: Profile,
                   template_name: str = scoring.EVAL_TEMPLATE) -> pd.DataFrame:
    """The dialogues of ``path`` summarized in batches: a table, also written to ``out_path`` as JSONL."""
    table = pd.DataFrame(read_dialogues(path))
    table["summary"] = scoring.summarize(model, tokenizer, [_readable(d) for d in table["dialogue"]], profile,
                                         template_name, desc=f"Summarizing {Path(path).name}")
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_json(out_path, orient="records", lines=True, force_ascii=False)
    return table
