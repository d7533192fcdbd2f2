"""Prompt templates: several phrasings per task (``data/templates/<task>.yaml``, as in promptsource and FLAN),
each a Jinja body ``input ||| target`` that turns a data row into an instruction (``source``) and its answer.
They render in a sandbox with strict variables and a time and size budget, and are checked on a dummy row
built from the file's ``fields:`` when it loads, so a typo fails at once. Errors raise :class:`TemplateError`.
"""

from __future__ import annotations

import difflib
import functools
import random
import re
import reprlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import yaml
from datasets import DatasetDict
from jinja2 import StrictUndefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from utils import data, results
from utils.config import TEMPLATES_DIR

_SEPARATOR = "|||"  # between a template's input and its target, as in promptsource
_CHOICES_VARIABLE = "answer_choices"  # holds the rendered answer choices (a list) inside a template
#: Field types allowed in a file's ``fields:``, with the dummy value templates are checked on.
_FIELD_TYPES = {"string": lambda name: f"<{name}>", "list": lambda name: [f"<{name} 1>", f"<{name} 2>"]}
_METADATA_KEYS = {"task", "original_task", "held_out", "metrics", "format"}

#: A render's budget: a template only arranges a row's fields, so anything slower or longer is a mistake.
_RENDER_SECONDS = 2.0
MAX_RENDER_CHARS = 200_000  # the longest text or list a render may build, in its output or on the way
_MAX_RANGE = 10_000  # items a template's range() may give
_MAX_LIPSUM = 10  # paragraphs a template's lipsum() may write
#: A format width of five digits or more (``'%99999s'``, ``'{:>99999}'``) or a ``*`` width pads without bound.
_WIDE_FORMAT = re.compile(r"%[-+ #0]*(\*|\d{5,}|\d*\.(\*|\d{5,}))|\{[^{}]*:[^{}]*\d{5,}[^{}]*\}")
_QUOTE = reprlib.Repr()  # error messages quote a value briefly, whatever its size or depth
vars(_QUOTE).update(maxstring=80, maxother=80, maxlist=4, maxtuple=4, maxdict=4, maxlevel=2)
_quote = _QUOTE.repr


class TemplateError(ValueError):
    """A template or template file is invalid, or a row does not fit a template."""


class _OverBudget(Exception):
    """A render ran too long or built too much (becomes a :class:`TemplateError`)."""


_budget = threading.local()  # .deadline: the time.monotonic() by which the current render must end


def _tick() -> None:
    """Fail the current render once past its deadline (called on every loop step, call and operator)."""
    deadline = getattr(_budget, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise _OverBudget(f"it ran for more than {_RENDER_SECONDS:g} s")


def _check_size(count: int, what: str) -> None:
    if count > MAX_RENDER_CHARS:
        raise _OverBudget(f"{what} asks for {count:,} characters or items (the limit: {MAX_RENDER_CHARS:,})")


def _checked(value):
    """``value``, unless it is a text or list longer than :data:`MAX_RENDER_CHARS`."""
    if isinstance(value, (str, list, tuple)):
        _check_size(len(value), f"a {type(value).__name__} it built")
    return value


def _check_format(text) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise _OverBudget("a format string has a '*' width or a width of five digits or more")


def _check_call(name: str, text, args: tuple, kwargs: dict, joined, what: str, is_format: bool) -> None:
    """Refuse, before it runs, a call on ``text`` with a count or width over budget (``center(10**9)``),
    texts to join adding up to more (``[text] * 9999``), a wide format, or growing ``text`` past it."""
    for arg in [*args, *kwargs.values()]:
        if isinstance(arg, int) and not isinstance(arg, bool):
            _check_size(arg, what)
    for value in joined:
        if isinstance(value, (list, tuple)):
            _check_size(sum(len(part) for part in value if isinstance(part, str)), what)
    if not isinstance(text, str):
        return
    if is_format:
        _check_format(text)
    if name in ("replace", "do_replace") and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        count = args[2] if len(args) > 2 else kwargs.get("count")
        matches = text.count(args[0]) if args[0] else len(text) + 1
        matches = min(matches, count) if isinstance(count, int) and count >= 0 else matches
        _check_size(len(text) + matches * (len(args[1]) - len(args[0])), what)
    elif name == "expandtabs":
        width = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(width, int):
            _check_size(len(text) + text.count("\t") * width, what)
    elif name == "do_indent":
        width = args[0] if args else kwargs.get("width", 4)
        width = len(width) if isinstance(width, str) else width  # indent() also takes the text to indent with
        if isinstance(width, int):
            _check_size(len(text) + (text.count("\n") + 1) * width, what)


def _budget_range(*args: int) -> range:
    items = range(*args)
    if len(items) > _MAX_RANGE:
        raise _OverBudget(f"range() of {len(items):,} items (the limit is {_MAX_RANGE:,})")
    return items


def _budget_lipsum(n: int = 5, html: bool = False, min: int = 20, max: int = 100) -> str:  # noqa: A002
    if not 0 <= n <= _MAX_LIPSUM or not 0 <= min <= max <= 100:
        raise _OverBudget(f"lipsum(n={n}, min={min}, max={max}) (limits: n <= {_MAX_LIPSUM}, max <= 100)")
    return generate_lorem_ipsum(n, html, min, max)


def _budget_iter(iterable):
    for item in iterable:
        _tick()
        yield item


def _budget_concat(*parts) -> str:
    texts = [str(part) for part in parts]
    _check_size(sum(map(len, texts)), "a concatenation ('~')")
    return "".join(texts)


def _budget_filter(function):
    """A Jinja filter that ticks the budget and refuses huge counts and results."""
    skip = 2 if hasattr(function, "jinja_pass_arg") else 1  # the context (if passed) and the filtered value
    name, what = function.__name__, f"the filter {function.__name__}"

    @functools.wraps(function)
    def budgeted(*args, **kwargs):
        _tick()
        value = args[skip - 1] if len(args) >= skip else None
        _check_call(name, value, args[skip:], kwargs, [value], what, is_format=name == "do_format")
        return _checked(function(*args, **kwargs))

    return budgeted


class _BudgetedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox (its attribute checks unchanged) with a budget on calls, loops and operators."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.globals.update(range=_budget_range, lipsum=_budget_lipsum, _budget_iter=_budget_iter,
                            _budget_concat=_budget_concat)
        self.filters = {name: _budget_filter(f) for name, f in self.filters.items()}

    def call_binop(self, context, operator, left, right):
        _tick()
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, (str, list, tuple)) and isinstance(count, int):
                    _check_size(len(sized) * count, "a repetition ('*')")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right * abs(left).bit_length() > 64 * 1024:
                raise _OverBudget(f"a power with a {right:,}-fold exponent")
        elif operator == "%":
            _check_format(left)
        return _checked(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        _tick()
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(owner, str):  # str.ljust(10**9), str.center, str.zfill, str.format('{:>99999}')
            _check_call(__obj.__name__, owner, args, kwargs, args, f"str.{__obj.__name__}()", is_format=True)
        return _checked(super().call(__context, __obj, *args, **kwargs))


# trim_blocks/lstrip_blocks let a `{% for %}` loop sit on its own lines without leaving blank lines.
_ENV = _BudgetedSandbox(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False)


class _BudgetedTree(NodeTransformer):
    """Sends every ``{% for %}`` loop through :func:`_budget_iter` and every ``~`` through
    :func:`_budget_concat` (the sandbox has no hook for either): even an empty loop is held to the budget."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        node = self.generic_visit(node)
        node.iter = self._call("_budget_iter", [node.iter], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        return self._call("_budget_concat", self.generic_visit(node).nodes, node.lineno)

    @staticmethod
    def _call(name: str, args: list, lineno: int) -> nodes.Call:
        return nodes.Call(nodes.Name(name, "load", lineno=lineno), list(args), [], None, None, lineno=lineno)


@functools.cache
def _compile(source: str) -> jinja2.Template:
    """Compile Jinja source once, budgeted (cached here, so Template objects stay plain, picklable data)."""
    tree = _BudgetedTree().visit(_ENV.parse(source))
    tree.set_environment(_ENV)
    return _ENV.from_string(tree)


def _render_budgeted(source: str, context: dict) -> str:
    """Render ``source`` within the time and size budget (else :class:`_OverBudget`)."""
    _budget.deadline = time.monotonic() + _RENDER_SECONDS  # renders never nest
    try:
        pieces, size = [], 0
        for piece in _compile(source).generate(context):
            size += len(piece)
            if size > MAX_RENDER_CHARS:
                raise _OverBudget(f"its output passed {MAX_RENDER_CHARS:,} characters")
            pieces.append(piece)
        return "".join(pieces)
    finally:
        _budget.deadline = None


@functools.cache
def _variables(source: str) -> frozenset[str]:
    """The top-level variables a piece of Jinja source reads."""
    return frozenset(meta.find_undeclared_variables(_ENV.parse(source)))


@dataclass(frozen=True)
class _TemplateMetadata:
    """What a template asks for (``task``, e.g. ``summarization``); ``original_task`` is False for an inverted
    template (a dialogue from its summary); ``held_out`` marks the one per task never trained on."""

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
    metadata: _TemplateMetadata = field(default_factory=_TemplateMetadata)

    def __post_init__(self) -> None:
        for key in ("jinja", "answer_choices"):
            value = getattr(self, key)
            if not isinstance(value, str) and (key == "jinja" or value is not None):
                raise TemplateError(f"Template {self.id!r}: '{key}' must be text (Jinja source), got "
                                    f"{type(value).__name__} {_quote(value)}; put it in quotes.")
        count = self.jinja.count(_SEPARATOR)
        if count != 1:
            raise TemplateError(f"Template {self.id!r} has {count} '|||' separators in its jinja; put one "
                                "between the input and the target ('{{dialogue}} ||| {{summary}}').")

    id = property(lambda self: f"{self.task}/{self.name}")  # the template's unique identifier
    original_task = property(lambda self: self.metadata.original_task)
    inverted = property(lambda self: not self.metadata.original_task)  # e.g. summary -> dialogue
    held_out = property(lambda self: self.metadata.held_out)
    input_jinja = property(lambda self: self.jinja.split(_SEPARATOR)[0])
    target_jinja = property(lambda self: self.jinja.split(_SEPARATOR)[1])

    def render(self, example: Mapping) -> tuple[str, str]:
        """Render a row into ``(source, target)``, both stripped; empty results are errors."""
        return tuple(self._render(example, 2))

    def render_source(self, example: Mapping) -> str:
        """Render only the input (for rows without a target, e.g. test rows grouped by dialogue)."""
        return self._render(example, 1)[0]

    def answer_choices_for(self, example: Mapping) -> list[str] | None:
        """The answer choices for this row (classification templates), or None when there are none."""
        if not self.answer_choices:
            return None
        self._check_fields(_variables(self.answer_choices), example)
        rendered = self._render_jinja(self.answer_choices, dict(example), example)
        choices = [choice.strip() for choice in rendered.split(_SEPARATOR) if choice.strip()]
        if not choices:
            raise TemplateError(f"Template {self.id!r}: answer_choices rendered no choices for "
                                f"{_row_label(example)}; give the row a non-empty list of options.")
        return choices

    def _render(self, example: Mapping, n_parts: int) -> list[str]:
        """The first ``n_parts`` of (input, target), stripped, once the row is known to have their fields."""
        parts = [("input", self.input_jinja), ("target", self.target_jinja)][:n_parts]
        needed = frozenset().union(*(_variables(source) for _, source in parts))
        self._check_fields(needed - {_CHOICES_VARIABLE}, example)
        context = dict(example)
        if _CHOICES_VARIABLE in needed:
            if not self.answer_choices:
                raise TemplateError(f"Template {self.id!r} uses '{_CHOICES_VARIABLE}' but defines none; add "
                                    "an answer_choices expression (e.g. '{{ options | join(\"|||\") }}').")
            context[_CHOICES_VARIABLE] = self.answer_choices_for(example)
        texts = []
        for part, source in parts:
            texts.append(self._render_jinja(source, context, example).strip())
            if not texts[-1]:
                raise TemplateError(
                    f"Template {self.id!r}: the {part} rendered empty for {_row_label(example)}. Check that "
                    f"its fields ({', '.join(sorted(_variables(source))) or 'none'}) are not empty in the "
                    "data, and that the jinja has text on that side of '|||'.")
        return texts

    def _check_fields(self, needed: frozenset[str], example: Mapping) -> None:
        missing = sorted(set(needed) - set(example))
        if missing:
            raise TemplateError(
                f"Template {self.id!r} uses {', '.join(map(repr, missing))}, which {_row_label(example)} "
                f"lacks; the row's available fields are: {', '.join(sorted(example)) or '(none)'}. Fix the "
                "spelling, or give the rows that field (e.g. dataset.rename_column(old, new)).")

    def _render_jinja(self, source: str, context: dict, example: Mapping) -> str:
        row = _row_label(example)
        try:
            return _render_budgeted(source, context)
        except _OverBudget as exc:
            size, key = max(((len(v), k) for k, v in example.items() if isinstance(v, str)),
                            key=lambda item: item[0], default=(0, ""))
            if size > MAX_RENDER_CHARS // 2:  # the data, not the template: say which field
                raise TemplateError(f"{row.capitalize()} has a {key!r} of {size:,} characters, more than a "
                                    f"prompt may hold ({MAX_RENDER_CHARS:,}); shorten it.") from None
            raise TemplateError(f"Template {self.id!r} went over its rendering budget on {row}: {exc}; "
                                "remove the loop, repetition or padding that grows it.") from None
        except Exception as exc:  # the sandbox's refusal, an undefined attribute, a filter given a wrong type
            problem = "did something the sandbox forbids" if isinstance(exc, SecurityError) else "failed"
            raise TemplateError(
                f"Template {self.id!r} {problem} on {row}: {type(exc).__name__}: {_short(exc)}. Templates "
                f"may only read the row's fields ({', '.join(sorted(example))}) with plain filters; fix the "
                "template or the data.") from exc


def _row_label(example: Mapping) -> str:
    return f"row id={_quote(example['id'])}" if example.get("id") else "this row"


def _short(text, limit: int = 300) -> str:
    """``str(text)`` cut to ``limit`` characters, so a message quoting a huge value stays readable."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def list_tasks(directory: str | Path = TEMPLATES_DIR) -> list[str]:
    """Names of the tasks that have a template file (``<task>.yaml``) in ``directory``."""
    return sorted(path.stem for path in Path(directory).glob("*.yaml"))


def load_templates(task: str, directory: str | Path | None = None) -> list[Template]:
    """Load and check every template of ``task`` (in file order) from ``<directory>/<task>.yaml``, by default
    from the task's file in the registry (:mod:`utils.data`) or in ``data/templates``."""
    path = _template_file(task, directory)
    if not path.is_file():
        raise TemplateError(f"No templates for task {task!r} (looked for {path}). Available tasks: "
                            f"{', '.join(list_tasks(path.parent)) or '(none)'}.")
    try:
        return list(_parse_file(path, path.read_bytes()))
    except TemplateError as exc:
        raise TemplateError(f"{path}: {exc}") from exc


def _template_file(task: str, directory: str | Path | None = None) -> Path:
    if directory is None:
        return data.TASKS[task].template_file if task in data.TASKS else TEMPLATES_DIR / f"{task}.yaml"
    return Path(directory) / f"{task}.yaml"


@functools.lru_cache(maxsize=64)
def _parse_file(path: Path, raw: bytes) -> tuple[Template, ...]:
    """Parse and check a template file's bytes once (templates are frozen; an edited file is parsed anew)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TemplateError(f"line {line}: not UTF-8 text (byte {raw[exc.start]:#04x}); save the file as "
                            "UTF-8.") from None
    try:  # aliases refused before composing: an alias bomb (aliases of aliases) could never be checked
        alias = next((e for e in yaml.parse(text, yaml.SafeLoader) if isinstance(e, yaml.AliasEvent)), None)
        if alias is None:
            root, spec = yaml.compose(text, yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"is not valid YAML: {_short(exc)}") from None
    if alias is not None:
        raise TemplateError(f"line {alias.start_mark.line + 1}: a YAML alias (*name); template files may not "
                            "use anchors and aliases, write the text out instead.")
    if not isinstance(spec, dict) or not {"task", "fields", "templates"} <= set(spec):
        raise TemplateError("needs the keys task, fields and templates (see data/templates/README.md).")
    # the line of each entry under templates: (for error messages)
    entries = [v.value for k, v in root.value if k.value == "templates" and isinstance(v, yaml.SequenceNode)]
    lines = [entry.start_mark.line + 1 for entry in entries[-1]] if entries else []
    if spec["task"] != path.stem:
        raise TemplateError(f"declares task {_quote(spec['task'])}, but the file is named {path.name}; make "
                            "them match.")
    fields = spec["fields"]
    if not (isinstance(fields, dict) and fields
            and all(isinstance(kind, str) and kind in _FIELD_TYPES for kind in fields.values())):
        raise TemplateError(f"'fields' must map each row field to its type ({' or '.join(_FIELD_TYPES)}), "
                            f"e.g. {{text: string, options: list}}; got {_quote(fields)}.")
    dummy = {name: _FIELD_TYPES[kind](name) for name, kind in fields.items()}
    if not isinstance(spec["templates"] or [], list):
        raise TemplateError("'templates' must be a list of entries, each starting with '- name: ...'.")
    templates: list[Template] = []
    for index, entry in enumerate(spec["templates"] or []):
        try:
            template = _template_from_entry(entry, spec["task"])
            if any(t.name == template.name for t in templates):
                raise TemplateError(f"template name {template.name!r} appears twice; make the names unique.")
            _validate(template, dummy)
        except TemplateError as exc:
            raise TemplateError(f"line {lines[index]}: {exc}" if index < len(lines) else str(exc)) from exc
        templates.append(template)
    if not templates:
        raise TemplateError("has no templates; add at least one under 'templates:'.")
    return tuple(templates)


def _template_from_entry(entry, task: str) -> Template:
    name = entry.get("name") if isinstance(entry, dict) else None
    if not name or not isinstance(name, str) or "jinja" not in entry:
        raise TemplateError(f"every template needs a 'name' (text) and a 'jinja' body; got {_quote(entry)}.")
    where = f"Template '{task}/{name}'"
    raw = entry.get("metadata") or {}
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: 'metadata' must be a mapping (key: value lines), got {_quote(raw)}.")
    if set(raw) - _METADATA_KEYS:
        raise TemplateError(f"{where}: unknown metadata key(s) {sorted(set(raw) - _METADATA_KEYS)}; "
                            f"allowed: {sorted(_METADATA_KEYS)}.")
    for key in ("original_task", "held_out"):
        if not isinstance(raw.get(key, False), bool):
            raise TemplateError(f"{where}: metadata {key} must be true or false, not {_quote(raw[key])}.")
    metadata = _TemplateMetadata(**{**raw, "metrics": tuple(raw.get("metrics") or ())})
    if metadata.format != "zero_shot":
        raise TemplateError(f"{where}: format must be zero_shot (few-shot prompts are built by code).")
    if metadata.held_out and not metadata.original_task:
        raise TemplateError(f"{where} is held out but inverted; hold out one of the original task instead.")
    return Template(name=name, task=task, jinja=entry["jinja"], answer_choices=entry.get("answer_choices"),
                    metadata=metadata)


def _validate(template: Template, dummy: dict) -> None:
    """Fail now, not mid-training: check syntax, variables and a render on a dummy row."""
    try:
        variables = set().union(*map(_variables, filter(None, (template.input_jinja, template.target_jinja,
                                                                 template.answer_choices))))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"Template {template.id!r} has a Jinja syntax error (line {exc.lineno}): "
                            f"{exc.message}") from exc
    unknown = sorted(variables - set(dummy) - {_CHOICES_VARIABLE})
    if unknown:
        raise TemplateError(f"Template {template.id!r} uses {', '.join(map(repr, unknown))}, not among the "
                            f"file's fields ({', '.join(dummy)}); fix the spelling, or add it to 'fields:'.")
    try:
        template.render(dummy)
    except TemplateError as exc:
        raise TemplateError(f"{exc} (found on a dummy row built from the file's 'fields:')") from exc


def get_template(task: str, name: str, directory: str | Path | None = None) -> Template:
    """The template called ``name`` of ``task`` (from ``directory`` as in :func:`load_templates`)."""
    by_name = {template.name: template for template in load_templates(task, directory)}
    if name not in by_name:
        hint = "".join(f" Did you mean {m!r}?" for m in difflib.get_close_matches(name, list(by_name), n=1))
        raise TemplateError(f"Task {task!r} has no template {name!r}.{hint} Its templates: "
                            f"{', '.join(by_name)}.")
    return by_name[name]


def training_templates(task: str, include_inverted: bool = True) -> list[Template]:
    """Templates to train on: all but the held-out one (and, if asked, without inverted ones)."""
    return [t for t in load_templates(task) if not t.held_out and (include_inverted or t.original_task)]


def held_out_template(task: str) -> Template:
    """The task's one held-out template: never trained on, used to test unseen phrasing."""
    held = [t for t in load_templates(task) if t.held_out]
    if len(held) != 1:
        raise TemplateError(f"Task {task!r} needs one template with 'held_out: true', not {len(held)} "
                            f"({', '.join(t.name for t in held) or 'none'}); fix {_template_file(task)}.")
    return held[0]


def fingerprint(template: Template) -> str:
    """A short hash of a template's wording (Jinja and answer choices), for cache keys."""
    return results.digest([f"{template.jinja}\x00{template.answer_choices or ''}"])


def assign_templates(n_rows: int, n_templates: int, seed: int = 42) -> np.ndarray:
    """Which template each row gets: each used n_rows/n_templates times (+-1), shuffled by ``seed``."""
    return np.random.default_rng(seed).permutation(np.arange(n_rows) % n_templates)


def apply_template(dataset, templates: Template | Sequence[Template], seed: int = 42,
                   with_target: bool = True, keep_columns: bool = True):
    """A ``Dataset`` (or ``DatasetDict``) with the columns ``source``, ``target`` (unless
    ``with_target=False``) and ``template`` (its name) added; several templates are spread evenly."""
    templates = (templates,) if isinstance(templates, Template) else tuple(templates)
    if not templates:
        raise TemplateError("apply_template got no templates; pass one Template or a list of them.")
    if hasattr(dataset, "keys"):  # a DatasetDict: each split on its own
        return DatasetDict({split: apply_template(ds, templates, seed, with_target, keep_columns)
                            for split, ds in dataset.items()})
    assignment = assign_templates(len(dataset), len(templates), seed) if len(templates) > 1 else None

    def render(example: dict, index: int) -> dict:
        template = templates[0] if assignment is None else templates[int(assignment[index])]
        if with_target:
            source, target = template.render(example)
            return {"source": source, "target": target, "template": template.name}
        return {"source": template.render_source(example), "template": template.name}

    label = templates[0].id if len(templates) == 1 else f"{len(templates)} {templates[0].task} templates"
    return dataset.map(render, with_indices=True, desc=f"Rendering {label}",
                       remove_columns=None if keep_columns else dataset.column_names)


def render_few_shot(template: Template, shots: Sequence[Mapping], example: Mapping,
                    delimiter: str | Sequence[str] = "\n\n", seed: int = 0, with_target: bool = True
                    ) -> tuple[str, str | None]:
    """FLAN-style few-shot ``(source, target)``: each shot with its target on the next line, then the
    query's input. A list of delimiters picks one reproducibly from ``seed`` (FLAN varies them); target is
    None when ``with_target=False``. Shots must not contain the query row itself."""
    if "id" in example and any(shot.get("id") == example["id"] for shot in shots):
        raise TemplateError(f"A few-shot exemplar is the query row itself (id={example['id']!r}); take shots "
                            "from the train split, never from the rows you evaluate.")
    if not isinstance(delimiter, str):
        delimiter = random.Random(seed).choice(list(delimiter))
    exemplars = ["\n".join(template.render(shot)) for shot in shots]
    source, target = template.render(example) if with_target else (template.render_source(example), None)
    return delimiter.join([*exemplars, source]), target
