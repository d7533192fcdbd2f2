"""The ``full`` profile without a network: its loaders against a local stand-in of the Hub cache, its budgets,
and the decisions it takes on a GPU (mocked).

The stand-in (tests/hub_standin.py) holds the five Hub repositories in their real cache layouts and schemas.
The Hub libraries read their cache locations and offline switch when imported, so everything that loads from
the stand-in runs in a fresh Python process with the variables set, exactly as a learner's kernel would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from unittest import mock

import hub_standin
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from utils import config, data, training
from utils.config import ROOT

LOAD_EVERYTHING = """
import json, sys
from utils import config, data, modeling
from utils.config import get_profile
from utils.data import PROBES
profile = get_profile("full")
tokenizer = modeling.load_tokenizer(profile)
model = modeling.load_model(profile)
out = {"tokens": len(tokenizer), "vocab": model.config.vocab_size,
       "encoded": tokenizer.convert_ids_to_tokens(tokenizer("Summarize the dialogue").input_ids),
       "target": {s: d[:3] for s, d in data.load_target(profile).items()},
       "probes": {p: {s: d[:3] | {"n": len(d)} for s, d in data.load_probe(p, profile).items()} for p in PROBES},
       "warm": modeling.warm_cache(profile)}
print("RESULT" + json.dumps(out))
"""


def run_python(code: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with this worktree's ``utils`` and ``env`` added to the environment."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COURSE_PROFILE": "full", **env}
    for variable in ("COURSE_MODEL", "HF_ENDPOINT"):
        full_env.pop(variable, None)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def result(process: subprocess.CompletedProcess) -> dict:
    assert process.returncode == 0, process.stderr[-3000:]
    line = next(line for line in process.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> dict[str, str]:
    """A stand-in HF cache for the whole module, and the variables that point the libraries at it offline."""
    return hub_standin.build(tmp_path_factory.mktemp("hf-standin"))


# ---------------------------------------------------------------------------------------------
# The blocking bug: ClassLabel columns
# ---------------------------------------------------------------------------------------------


def classlabel_split(names: list[str], column: str = "text", n: int = 12) -> Dataset:
    features = Features({column: Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict({column: [f"row {i}" for i in range(n)], "label": [i % len(names) for i in range(n)]},
                             features=features)


@pytest.mark.parametrize("probe, hub_id, names, column", [
    ("topic", "fancyzhx/ag_news", data.AG_NEWS_LABELS, "text"),
    ("sentiment", "fancyzhx/amazon_polarity", data.SENTIMENT_LABELS, "content"),
])
def test_classlabel_columns_become_label_names_not_digits(probe, hub_id, names, column):
    split = classlabel_split(names, column)
    if column == "content":
        split = split.add_column("title", [f"title {i}" for i in range(len(split))])
    normalized = data.normalize_probe(probe, hub_id, DatasetDict(train=split, test=split))
    for part in normalized.values():
        assert part.features["label"] == Value("string")
        assert set(part["label"]) <= set(names), part["label"][:5]
    test = normalized["test"]
    assert test["label"] == [names[i % len(names)] for i in range(len(test))]


# ---------------------------------------------------------------------------------------------
# Every full-profile model and data set through the real loaders, offline, from the stand-in
# ---------------------------------------------------------------------------------------------


def test_standin_layout_is_what_the_libraries_read(standin):
    datasets_cache = Path(standin["HF_DATASETS_CACHE"])
    info = json.loads(next(datasets_cache.glob("fancyzhx___amazon_polarity/*/0.0.0/*/dataset_info.json")).read_text())
    assert info["config_name"] == "amazon_polarity"
    assert info["features"]["label"]["_type"] == "ClassLabel"
    squad = json.loads(next(datasets_cache.glob("rajpurkar___squad/plain_text/0.0.0/*/dataset_info.json")).read_text())
    assert set(squad["splits"]) == {"train", "validation"}
    model = Path(standin["HF_HUB_CACHE"]) / "models--google--flan-t5-base"
    assert (model / "snapshots" / (model / "refs" / "main").read_text() / "model.safetensors").is_file()


def test_full_profile_loads_everything_offline_from_the_standin(standin):
    out = result(run_python(LOAD_EVERYTHING, standin))
    assert out["tokens"] == out["vocab"]
    assert "<unk>" not in out["encoded"]
    target = out["target"]
    assert set(target) == {"train", "validation", "test"}
    assert len(set(target["test"]["dialogue"])) < len(target["test"]["dialogue"]), "DialogSum's flattened test rows"
    probes = out["probes"]
    for probe in ("topic", "sentiment"):
        for rows in probes[probe].values():
            assert rows["n"] > 0
            assert all(label in rows["options"][0] and not label.isdigit() for label in rows["label"]), (probe, rows)
    assert set(probes["topic"]["test"]["options"][0]) == set(data.AG_NEWS_LABELS)
    qa = probes["qa"]["test"]
    assert all(isinstance(a, str) and a and a in c for a, c in zip(qa["answer"], qa["context"], strict=True))
    assert all(t and isinstance(t, str) for t in probes["title"]["test"]["title"])
    assert len(out["warm"]) == 6  # model and tokenizer, target, four probes
    heads = Path(standin["HF_DATASETS_CACHE"]) / "course_heads" / "fancyzhx--amazon_polarity"
    kept = sorted(p.name for p in heads.iterdir() if (p / "dataset_info.json").is_file())
    expected = sorted(f"{split}-{n}" for split, n in data.STREAMED["fancyzhx/amazon_polarity"].items())
    assert kept == expected, "the streamed rows are kept (complete, under their final names) for offline use"


def test_tokenizer_missing_from_the_cache_fails_clearly(tmp_path):
    env = hub_standin.build(tmp_path, rows={"train": 8, "validation": 4, "test": 6}, tokenizer=False)
    process = run_python("from utils import get_profile, modeling; modeling.load_tokenizer(get_profile())", env)
    assert process.returncode != 0
    assert "ModelLoadError" in process.stderr and "python -m utils.modeling" in process.stderr, process.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# Budgets, precision and checkpoints on a learner's GPU
# ---------------------------------------------------------------------------------------------


def test_full_defaults_to_a_colab_budget_and_the_lab_budget_is_opt_in(monkeypatch):
    monkeypatch.delenv("COURSE_BUDGET", raising=False)
    for variable in config.OVERRIDES:
        monkeypatch.delenv(variable, raising=False)
    colab = config.get_profile("full")
    assert colab.train_steps * colab.batch_size < 12_460, "the default trains less than one epoch of DialogSum"
    monkeypatch.setenv("COURSE_BUDGET", "lab")
    lab = config.get_profile("full")
    assert (lab.train_steps, lab.batch_size, lab.lr_full, lab.lr_lora) == (31150, 4, 1e-5, 1e-3)  # REFERENCES.md
    assert lab.n_eval_dialogues is None and lab.model == colab.model
    monkeypatch.setenv("COURSE_TRAIN_STEPS", "12")
    assert config.get_profile("full").train_steps == 12, "an explicit override beats the named budget"
    monkeypatch.setenv("COURSE_BUDGET", "huge")
    with pytest.raises(config.ProfileError, match="default, lab"):
        config.get_profile("full")
    monkeypatch.setenv("COURSE_BUDGET", "lab")
    with pytest.raises(config.ProfileError, match="tiny"):
        config.get_profile("tiny")


@pytest.mark.parametrize("cuda, capability, expected", [
    (False, None, "fp32"),
    (True, (7, 5), "fp32"),  # T4: bf16 only emulated
    (True, (7, 0), "fp32"),  # V100
    (True, (8, 0), "bf16"),  # A100
    (True, (8, 9), "bf16"),  # L4
    (True, (9, 0), "bf16"),  # H100
])
def test_bf16_only_where_the_gpu_has_it_natively(cuda, capability, expected):
    with mock.patch("torch.cuda.is_available", return_value=cuda), \
         mock.patch("torch.cuda.get_device_capability", return_value=capability), \
         mock.patch("torch.cuda.is_bf16_supported", return_value=True):  # what emulation reports
        assert training.precision() == expected


def test_only_the_newest_checkpoint_keeps_its_optimizer_state(tmp_path):
    for step in (4, 8, 12):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in (*training.RESUME_ONLY_FILES, "model.safetensors", "trainer_state.json"):
            (folder / name).write_text("x")
    args = mock.Mock(should_save=True, output_dir=str(tmp_path))
    training._CheckpointUpkeep().on_save(args, mock.Mock(global_step=12), None)
    for step, kept in ((4, False), (8, False), (12, True)):
        folder = tmp_path / f"checkpoint-{step}"
        assert (folder / "optimizer.pt").exists() == kept
        assert (folder / "model.safetensors").exists() and (folder / "trainer_state.json").exists()


def test_a_short_multitask_run_builds_only_the_examples_its_steps_see():
    from utils import train

    smoke = config.get_profile("smoke")
    assert len(train.training_data("multitask", smoke, steps=2)) == 2 * smoke.batch_size
    assert len(train.training_data("multitask", smoke)) == smoke.train_steps * smoke.batch_size


@pytest.mark.parametrize("label", [0, 3, None])
def test_a_label_that_is_not_text_is_named_in_the_error(label):
    from utils import evaluation

    with pytest.raises(TypeError, match="ClassLabel"):
        evaluation.accuracy(["World"], [label])


# ---------------------------------------------------------------------------------------------
# A network that accepts connections but blocks the Hub (a proxy, a captive portal)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_hub(monkeypatch):
    """A local HTTP server standing for the Hub's address; ``status`` sets what it answers to everything."""
    class Handler(BaseHTTPRequestHandler):
        status = 403

        def _answer(self):
            self.send_response(Handler.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET = _answer

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # restored afterwards
        monkeypatch.setenv(variable, "0")
    config.hub_reachable.cache_clear()
    yield Handler
    config.hub_reachable.cache_clear()
    server.shutdown()


def test_a_proxy_that_blocks_the_hub_counts_as_offline(fake_hub, monkeypatch, tmp_path):
    import datasets
    import huggingface_hub.constants

    fake_hub.status = 200
    assert config.hub_reachable()
    config.hub_reachable.cache_clear()
    fake_hub.status = 403  # what a blocking proxy answers
    assert not config.hub_reachable()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    started = time.monotonic()
    with pytest.raises(config.HubUnavailableError, match="python -m utils.modeling"):
        data.load_target(config.get_profile("full"))
    assert time.monotonic() - started < 10, "no retrying for tens of seconds"


# ---------------------------------------------------------------------------------------------
# The reference lab's scoring protocol beside the course's
# ---------------------------------------------------------------------------------------------


def test_the_lab_protocol_scores_each_reference_row_without_stemming():
    from utils import evaluation

    predictions, references = ["The cats talked"], [["the cat talks", "dogs barked"]]
    course = evaluation.score_summaries(predictions, references)
    lab = evaluation.score_summaries(predictions, references, protocol="lab")
    assert (course["n"], lab["n"]) == (1, 2)
    assert course["rouge1"] == pytest.approx(1.0)  # stemmed: cat(s), talk(ed|s); the best reference counts
    assert lab["rouge1"] == pytest.approx((1 / 3 + 0) / 2)  # only "the" matches as written; each row counts
    with pytest.raises(ValueError, match="course"):
        evaluation.score_summaries(predictions, references, protocol="stemmed")


# ---------------------------------------------------------------------------------------------
# The lessons themselves, in the full code path, against the stand-in
# ---------------------------------------------------------------------------------------------

#: Budgets small enough for CI; everything else is the full profile's (model and data ids, lengths, LoRA).
TINY_BUDGETS = {"COURSE_TRAIN_STEPS": "2", "COURSE_BATCH_SIZE": "2", "COURSE_EVAL_DIALOGUES": "4",
                "COURSE_PROBE_EVAL": "7", "COURSE_N_TRAIN": "32", "COURSE_MAX_NEW_TOKENS": "16"}
LESSONS = ("00", "01", "02", "03", "04", "05", "06")


@pytest.mark.full_profile
def test_lessons_run_in_the_full_code_path_against_the_standin(tmp_path_factory, tmp_path):
    """Every lesson, exercise solutions included, runs to the end in the full code path, on a model that learned
    nothing (random weights: it scores 0 on the probes), as a weak model a user picks may."""
    import nbformat

    standin = hub_standin.build(tmp_path_factory.mktemp("hf-standin-untrained"), untrained=True)
    out = tmp_path / "executed"
    notebooks = [str(next((ROOT / "notebooks").glob(f"{n}_*.ipynb"))) for n in LESSONS]
    env = {**standin, **TINY_BUDGETS, "COURSE_RESULTS_DIR": str(tmp_path / "results")}
    process = run_python(
        "import sys; from nbconvert.nbconvertapp import main; "
        f"sys.exit(main(['--to', 'notebook', '--execute', '--output-dir', {str(out)!r}, "
        f"'--ExecutePreprocessor.timeout=600', '--ExecutePreprocessor.kernel_name=python3', *{notebooks!r}]))",
        env, timeout=900)
    assert process.returncode == 0, process.stderr[-4000:]

    def printed(lesson: str) -> str:
        notebook = nbformat.read(next(out.glob(f"{lesson}_*.ipynb")), as_version=4)
        return "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)

    texts = {lesson: printed(lesson) for lesson in LESSONS}
    assert "Profile 'full'" in texts["00"]
    for lesson in ("03", "04", "05"):
        assert "smoke's budgets" not in texts[lesson], lesson
    assert "Adapter off scores exactly as the base model on every probe: True" in texts["04"]
    assert "No relative drop can be computed: the base model scores 0 on every probe" in texts["04"]
    assert "In the reference lab's protocol, its full fine-tuning gained" in texts["03"] and "NOT met" not in texts["03"]
    assert "No expected ranges for the 'full' profile (compare with the reference lab's" in texts["03"]
    metrics = json.loads((tmp_path / "results" / "full" / "metrics.json").read_text())
    assert {"zero_shot", "single_task", "forgetting", "multitask"} <= set(metrics)
    assert metrics["zero_shot"]["lab_protocol"]["n_rows"] > metrics["zero_shot"]["n_dialogues"]


def test_a_hub_probe_is_normalized_once_per_process(monkeypatch):
    calls = []

    def fake_hub(hub_id):
        calls.append(hub_id)
        split = classlabel_split(data.AG_NEWS_LABELS)
        return DatasetDict(train=split, test=split)

    monkeypatch.setattr(data, "load_hub", fake_hub)
    full = config.get_profile("full")
    first = data.load_probe("topic", full)
    first["test"] = first["test"].select(range(1))  # a caller editing its copy changes nothing for the next
    second = data.load_probe("topic", full)
    assert calls == ["fancyzhx/ag_news"]
    assert len(second["test"]) == 12


def test_the_example_shown_falls_back_when_a_short_mixture_lacks_it():
    from utils import mixture

    rows = [{"task": t, "format": f, "id": i} for i, (t, f) in enumerate(
        [("qa", mixture.ZERO_SHOT), ("topic", mixture.FEW_SHOT), ("qa", mixture.FEW_SHOT)])]
    mix = Dataset.from_list(rows)
    assert mixture.first_example(mix, mixture.FEW_SHOT, "topic")["id"] == 1
    assert mixture.first_example(mix, mixture.FEW_SHOT, "sentiment")["id"] == 1  # another task's, not an IndexError
    assert mixture.first_example(mix.select([0]), mixture.FEW_SHOT, "sentiment") is None
