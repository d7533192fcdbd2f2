"""Prompt templates: turn a data row into an instruction (``source``) and its answer (``target``).

In the spirit of promptsource and FLAN, each task has a YAML file in ``data/templates/<task>.yaml`` with
several phrasings of the same task. A template's ``jinja`` body holds the input, then ``|||``, then the target::

    Summarize the following conversation.

    {{dialogue}}

    Summary: ||| {{summary}}

Templates render in a sandboxed Jinja environment with strict undefined variables, and every template is
checked when its file loads (by rendering it on a dummy row built from the file's ``fields:``), so a typo
fails at once, not in the middle of a training run. Bad templates raise :class:`TemplateError`.

Main entry points: :func:`load_templates`, :func:`get_template`, :func:`training_templates`,
:func:`held_out_template`, :meth:`Template.render`, :func:`apply_template` and :func:`render_few_shot`.
"""

from __future__ import annotations

import difflib
import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import yaml
from jinja2 import StrictUndefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from utils.config import TEMPLATES_DIR

#: Separates a template's input from its target, as in promptsource.
SEPARATOR = "|||"
#: The variable holding a template's rendered answer choices (a list) inside its Jinja body.
CHOICES_VARIABLE = "answer_choices"
#: Field types allowed in a file's ``fields:`` mapping, with the dummy value used to check templates.
FIELD_TYPES = {"string": lambda name: f"<{name}>", "list": lambda name: [f"<{name} 1>", f"<{name} 2>"]}
METADATA_KEYS = {"task", "original_task", "held_out", "metrics", "format"}
FORMATS = ("zero_shot",)

# Immutable sandbox: templates may read rows but not call unsafe attributes or mutate lists/dicts.
# trim_blocks/lstrip_blocks let a `{% for %}` loop sit on its own lines without leaving blank lines.
_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
)


class TemplateError(ValueError):
    """A template or template file is invalid, or a row does not fit a template."""


@functools.cache
def _compile(source: str) -> jinja2.Template:
    """Compile Jinja source once (cached, so Template objects stay plain, picklable data)."""
    return _ENV.from_string(source)


@functools.cache
def _variables(source: str) -> frozenset[str]:
    """The top-level variables a piece of Jinja source reads."""
    return frozenset(meta.find_undeclared_variables(_ENV.parse(source)))


@dataclass(frozen=True)
class TemplateMetadata:
    """What a template is for.

    ``task`` names what the template asks for (e.g. ``summarization``, ``dialogue_generation``);
    ``original_task`` is False for an *inverted* template (e.g. write a dialogue from its summary);
    ``held_out`` marks the one template per task kept out of every training run (for evaluation only).
    """

    task: str = ""
    original_task: bool = True
    held_out: bool = False
    metrics: tuple[str, ...] = ()
    format: str = "zero_shot"


@dataclass(frozen=True)
class Template:
    """One prompt template of a task: a Jinja body ``input ||| target`` plus metadata."""

    name: str
    task: str  # the template file's task, e.g. "dialogsum"
    jinja: str
    answer_choices: str | None = None  # Jinja expression rendering to "a ||| b ||| c"
    metadata: TemplateMetadata = field(default_factory=TemplateMetadata)

    def __post_init__(self) -> None:
        count = self.jinja.count(SEPARATOR)
        if count != 1:
            raise TemplateError(
                f"Template {self.id!r} has {count} '{SEPARATOR}' separators in its jinja; it needs exactly one, "
                f"between the input and the target (e.g. 'Summarize: {{{{dialogue}}}} {SEPARATOR} {{{{summary}}}}')."
            )

    # --- descriptive properties -------------------------------------------------------------------
    @property
    def id(self) -> str:
        """``task/name``, the template's unique identifier."""
        return f"{self.task}/{self.name}"

    @property
    def original_task(self) -> bool:
        return self.metadata.original_task

    @property
    def inverted(self) -> bool:
        """True when the template turns the task around (e.g. summary -> dialogue)."""
        return not self.metadata.original_task

    @property
    def held_out(self) -> bool:
        return self.metadata.held_out

    @property
    def input_jinja(self) -> str:
        return self.jinja.split(SEPARATOR)[0]

    @property
    def target_jinja(self) -> str:
        return self.jinja.split(SEPARATOR)[1]

    @property
    def variables(self) -> frozenset[str]:
        """Row fields (and ``answer_choices``) this template reads."""
        names = _variables(self.input_jinja) | _variables(self.target_jinja)
        return names | (_variables(self.answer_choices) if self.answer_choices else frozenset())

    # --- rendering ----------------------------------------------------------------------------------
    def render(self, example: Mapping) -> tuple[str, str]:
        """Render a row into ``(source, target)``, both stripped; empty results are errors."""
        context = self._context(example, self.input_jinja, self.target_jinja)
        source = self._render_part(self.input_jinja, context, example, "input")
        target = self._render_part(self.target_jinja, context, example, "target")
        return source, target

    def render_source(self, example: Mapping) -> str:
        """Render only the input (for rows without a target, e.g. test rows grouped by dialogue)."""
        context = self._context(example, self.input_jinja)
        return self._render_part(self.input_jinja, context, example, "input")

    def answer_choices_for(self, example: Mapping) -> list[str] | None:
        """The answer choices for this row (classification templates), or None when there are none."""
        if not self.answer_choices:
            return None
        self._check_fields(_variables(self.answer_choices), example)
        rendered = self._render_jinja(self.answer_choices, dict(example), example)
        choices = [choice.strip() for choice in rendered.split(SEPARATOR) if choice.strip()]
        if not choices:
            raise TemplateError(
                f"Template {self.id!r}: answer_choices rendered no choices for {_row_label(example)}; "
                "check that the row's options field is a non-empty list."
            )
        return choices

    def _context(self, example: Mapping, *parts: str) -> dict:
        """The row plus its answer choices, after checking it has every field the given parts read."""
        needed = frozenset().union(*map(_variables, parts))
        self._check_fields(needed - {CHOICES_VARIABLE}, example)
        context = dict(example)
        if CHOICES_VARIABLE in needed:
            if not self.answer_choices:
                raise TemplateError(
                    f"Template {self.id!r} uses '{CHOICES_VARIABLE}' but defines no answer_choices; "
                    "add an answer_choices expression (e.g. '{{ options | join(\"|||\") }}')."
                )
            context[CHOICES_VARIABLE] = self.answer_choices_for(example)
        return context

    def _check_fields(self, needed: frozenset[str] | set[str], example: Mapping) -> None:
        missing = sorted(set(needed) - set(example))
        if missing:
            raise TemplateError(
                f"Template {self.id!r} uses the variable(s) {', '.join(map(repr, missing))}, which "
                f"{_row_label(example)} does not have. The row's available fields are: "
                f"{', '.join(sorted(example)) or '(none)'}. Fix the spelling in the template, or give the rows "
                "that field (e.g. dataset.rename_column(old, new))."
            )

    def _render_part(self, source: str, context: dict, example: Mapping, part: str) -> str:
        text = self._render_jinja(source, context, example).strip()
        if not text:
            raise TemplateError(
                f"Template {self.id!r}: the {part} rendered empty for {_row_label(example)}. "
                f"Check that the fields it uses ({', '.join(sorted(_variables(source))) or 'none'}) are not "
                "empty in the data, and that the template's jinja has text on that side of '|||'."
            )
        return text

    def _render_jinja(self, source: str, context: dict, example: Mapping) -> str:
        try:
            return _compile(source).render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"Template {self.id!r} has a Jinja syntax error (line {exc.lineno}): {exc.message}"
            ) from exc
        except SecurityError as exc:
            raise TemplateError(
                f"Template {self.id!r} did something the sandbox forbids ({exc}). Templates may only read "
                "row fields and use plain filters; remove the unsafe expression."
            ) from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"Template {self.id!r}: {exc} when rendering {_row_label(example)}. The row's available "
                f"fields are: {', '.join(sorted(example))}. Fix the template or the data."
            ) from exc
        except Exception as exc:  # e.g. a filter given the wrong type: name the template, keep the cause
            raise TemplateError(
                f"Template {self.id!r} failed on {_row_label(example)}: {type(exc).__name__}: {exc}"
            ) from exc


def _row_label(example: Mapping) -> str:
    return f"row id={example['id']!r}" if "id" in example else "this row"


# --- loading ----------------------------------------------------------------------------------------
def list_tasks(directory: str | Path = TEMPLATES_DIR) -> list[str]:
    """Names of the tasks that have a template file (``<task>.yaml``) in ``directory``."""
    return sorted(path.stem for path in Path(directory).glob("*.yaml"))


def load_templates(task: str, directory: str | Path = TEMPLATES_DIR) -> list[Template]:
    """Load and check every template of ``task`` from ``<directory>/<task>.yaml`` (in file order)."""
    path = Path(directory) / f"{task}.yaml"
    if not path.is_file():
        raise TemplateError(
            f"No templates for task {task!r} (looked for {path}). Available tasks: "
            f"{', '.join(list_tasks(directory)) or '(none)'}."
        )
    try:
        return _load_file(path)
    except TemplateError as exc:
        raise TemplateError(f"{path}: {exc}") from exc


def _load_file(path: Path) -> list[Template]:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TemplateError(f"is not valid YAML: {exc}") from exc
    if not isinstance(spec, dict) or not {"task", "fields", "templates"} <= set(spec):
        raise TemplateError("needs top-level keys 'task', 'fields' and 'templates' (see data/templates/README.md).")
    if spec["task"] != path.stem:
        raise TemplateError(f"declares task {spec['task']!r} but the file is named {path.name}; make them match.")
    fields = _parse_fields(spec["fields"])
    dummy = {name: FIELD_TYPES[kind](name) for name, kind in fields.items()}
    templates: list[Template] = []
    for entry in spec["templates"] or []:
        template = _template_from_entry(entry, spec["task"])
        if any(t.name == template.name for t in templates):
            raise TemplateError(f"template name {template.name!r} appears twice; template names must be unique.")
        _validate(template, dummy)
        templates.append(template)
    if not templates:
        raise TemplateError("has no templates; add at least one under 'templates:'.")
    return templates


def _parse_fields(fields) -> dict[str, str]:
    if not isinstance(fields, dict) or not fields:
        raise TemplateError("'fields' must map each row field to its type, e.g. {text: string, options: list}.")
    bad = {name: kind for name, kind in fields.items() if kind not in FIELD_TYPES}
    if bad:
        raise TemplateError(f"unknown field type(s) {bad}; use one of {', '.join(FIELD_TYPES)}.")
    return dict(fields)


def _template_from_entry(entry, task: str) -> Template:
    if not isinstance(entry, dict) or "name" not in entry or "jinja" not in entry:
        raise TemplateError(f"every template needs a 'name' and a 'jinja' body; got {entry!r:.120}.")
    name = entry["name"]
    where = f"Template '{task}/{name}'"
    raw = entry.get("metadata") or {}
    unknown = set(raw) - METADATA_KEYS
    if unknown:
        raise TemplateError(
            f"{where}: unknown metadata key(s) {sorted(unknown)}; allowed: {sorted(METADATA_KEYS)}."
        )
    for key in ("original_task", "held_out"):
        if not isinstance(raw.get(key, False), bool):
            raise TemplateError(f"{where}: metadata {key} must be true or false, not {raw[key]!r}.")
    metadata = TemplateMetadata(
        task=raw.get("task", ""),
        original_task=raw.get("original_task", True),
        held_out=raw.get("held_out", False),
        metrics=tuple(raw.get("metrics") or ()),
        format=raw.get("format", "zero_shot"),
    )
    if metadata.format not in FORMATS:
        raise TemplateError(f"{where}: format must be one of {FORMATS} (few-shot is built by code).")
    if metadata.held_out and not metadata.original_task:
        raise TemplateError(
            f"{where} is held out but inverted; hold out a template of the original task instead."
        )
    return Template(name=name, task=task, jinja=entry["jinja"], answer_choices=entry.get("answer_choices"),
                    metadata=metadata)


def _validate(template: Template, dummy: dict) -> None:
    """Fail now, not mid-training: check syntax, variables and a render on a dummy row."""
    for part in filter(None, (template.input_jinja, template.target_jinja, template.answer_choices)):
        try:
            _variables(part)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"Template {template.id!r} has a Jinja syntax error (line {exc.lineno}): {exc.message}"
            ) from exc
    unknown = sorted(template.variables - set(dummy) - {CHOICES_VARIABLE})
    if unknown:
        raise TemplateError(
            f"Template {template.id!r} uses {', '.join(map(repr, unknown))}, which is not among the file's "
            f"declared fields ({', '.join(dummy)}). Fix the spelling, or add the field under 'fields:'."
        )
    try:
        template.render(dummy)
    except TemplateError as exc:
        raise TemplateError(f"{exc} (found by rendering a dummy row built from the file's 'fields:')") from exc


def get_template(task: str, name: str, directory: str | Path = TEMPLATES_DIR) -> Template:
    """The template called ``name`` of ``task``."""
    templates = load_templates(task, directory)
    for template in templates:
        if template.name == name:
            return template
    names = [t.name for t in templates]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise TemplateError(f"Task {task!r} has no template {name!r}.{hint} Its templates: {', '.join(names)}.")


def training_templates(task: str, include_inverted: bool = True, directory: str | Path = TEMPLATES_DIR
                       ) -> list[Template]:
    """Templates to train on: all but the held-out one (and, if asked, without inverted ones)."""
    return [
        t for t in load_templates(task, directory)
        if not t.held_out and (include_inverted or t.original_task)
    ]


def held_out_template(task: str, directory: str | Path = TEMPLATES_DIR) -> Template:
    """The task's one held-out template: never trained on, used to test unseen phrasing."""
    held = [t for t in load_templates(task, directory) if t.held_out]
    if len(held) != 1:
        raise TemplateError(
            f"Task {task!r} must have exactly one template with 'held_out: true', found {len(held)} "
            f"({', '.join(t.name for t in held) or 'none'}). Fix {Path(directory) / f'{task}.yaml'}."
        )
    return held[0]


# --- applying templates to data sets ----------------------------------------------------------------
def assign_templates(n_rows: int, n_templates: int, seed: int = 42) -> np.ndarray:
    """Which template each row gets: balanced (each used n_rows/n_templates times, +-1), shuffled by seed."""
    return np.random.default_rng(seed).permutation(np.arange(n_rows) % n_templates)


def _render_row(example: dict, index: int, templates: tuple[Template, ...], assignment: np.ndarray | None,
                with_target: bool) -> dict:
    template = templates[0] if assignment is None else templates[int(assignment[index])]
    if with_target:
        source, target = template.render(example)
        return {"source": source, "target": target, "template": template.name}
    return {"source": template.render_source(example), "template": template.name}


def apply_template(dataset, templates: Template | Sequence[Template], seed: int = 42,
                   num_proc: int | None = None, with_target: bool = True, keep_columns: bool = True):
    """Turn a ``Dataset`` (or ``DatasetDict``) into an instruction data set with ``datasets.map``.

    Adds the columns ``source``, ``target`` (unless ``with_target=False``) and ``template`` (its name).
    With several templates each row gets one, balanced and reproducible from ``seed``.
    """
    templates = (templates,) if isinstance(templates, Template) else tuple(templates)
    if not templates:
        raise TemplateError("apply_template got no templates; pass one Template or a list of them.")
    if hasattr(dataset, "keys"):  # a DatasetDict: each split on its own
        from datasets import DatasetDict

        return DatasetDict({
            split: apply_template(ds, templates, seed, num_proc, with_target, keep_columns)
            for split, ds in dataset.items()
        })
    assignment = assign_templates(len(dataset), len(templates), seed) if len(templates) > 1 else None
    render = functools.partial(_render_row, templates=templates, assignment=assignment, with_target=with_target)
    label = templates[0].id if len(templates) == 1 else f"{len(templates)} {templates[0].task} templates"
    return dataset.map(
        render, with_indices=True, num_proc=num_proc, desc=f"Rendering {label}",
        remove_columns=None if keep_columns else dataset.column_names,
    )


def render_few_shot(template: Template, shots: Sequence[Mapping], example: Mapping,
                    delimiter: str | Sequence[str] = "\n\n", target_separator: str = "\n",
                    seed: int = 0, with_target: bool = True) -> tuple[str, str | None]:
    """FLAN-style few-shot prompt: each shot rendered with its target, then the query's input.

    ``delimiter`` joins the exemplars; give a list to pick one at random (reproducibly from ``seed``),
    as FLAN varies its few-shot delimiters. Returns ``(source, target)``; target is None when
    ``with_target=False`` (rows without a reference). Shots must not contain the query row itself.
    """
    if "id" in example and any(shot.get("id") == example["id"] for shot in shots):
        raise TemplateError(
            f"A few-shot exemplar is the query row itself (id={example['id']!r}); take shots from the "
            "train split, never from the rows you evaluate."
        )
    if not isinstance(delimiter, str):
        if not delimiter:
            raise TemplateError("delimiter is an empty list; give a string or a non-empty list of strings.")
        delimiter = random.Random(seed).choice(list(delimiter))
    exemplars = [target_separator.join(template.render(shot)) for shot in shots]
    if with_target:
        source, target = template.render(example)
    else:
        source, target = template.render_source(example), None
    return delimiter.join([*exemplars, source]), target
