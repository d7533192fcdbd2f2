"""`python -m utils.train` runs unchanged under torchrun: 2 CPU processes (gloo backend), data-parallel.

Both processes must train on different shards of the data, only rank 0 may write, and the saved run must
load and score. The launch takes well under a minute with the course's tiny model in the smoke profile.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from utils import modeling, training
from utils.config import get_profile
from utils.train import run_name, trainer_overrides

FIRST_BATCH = re.compile(r"\[rank (\d) of (\d)\] first training batch: rows \[([\d, -]*)\]")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One 2-process training run (2 steps, smoke profile); returns its folder and its console output."""
    profile = get_profile("smoke")
    if not Path(profile.model).is_dir():
        pytest.skip(f"the course's model {profile.model} is not built; run `make model`")
    out = tmp_path_factory.mktemp("ddp") / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "utils.train", "--task", "dialogsum", "--method", "full", "--profile", "smoke",
               "--steps", "2", "--output", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COURSE_PROFILE": "smoke"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"the 2-process run failed:\n{log[-5000:]}"
    return out, log, profile


def test_both_ranks_train_on_different_shards(ddp_run):
    _, log, _ = ddp_run
    batches = {int(rank): (int(world), {int(row) for row in rows.split(", ")})
               for rank, world, rows in FIRST_BATCH.findall(log)}
    assert sorted(batches) == [0, 1], f"expected a first-batch line from ranks 0 and 1:\n{log[-3000:]}"
    assert all(world == 2 for world, _ in batches.values()), "the trainer must see a world of 2 processes"
    rows_0, rows_1 = batches[0][1], batches[1][1]
    assert -1 not in rows_0 | rows_1, "every example in a batch must come from the training data"
    assert rows_0.isdisjoint(rows_1), "the two processes must get different examples"


def test_only_rank_0_writes_and_the_run_loads_and_scores(ddp_run):
    out, log, profile = ddp_run
    assert "[rank 1 of 2] finished training; rank 0 writes the results." in log
    assert modeling.UNTIED_T5_LOAD not in log, "the command line must drop the load note a lesson drops"
    scores = json.loads((out / "scores.json").read_text())
    assert scores["world_size"] == 2 and scores["written_by_rank"] == 0
    assert scores["test"]["n"] == profile.n_eval_dialogues and 0 <= scores["test"]["rouge1"] <= 1
    assert not (out / "final.partial").exists()
    for checkpoint in (out / "final", *[folder for _, folder in training.checkpoints(out)]):
        assert len(list(checkpoint.glob("*.safetensors"))) == 1, f"one set of weights in {checkpoint.name}"
    run = training.load_run(out)
    assert run.summary["settings"]["steps"] == 2
    base = modeling.load_model(profile.model)
    assert modeling.weights_fingerprint(run.model) != modeling.weights_fingerprint(base), "it must have trained"


def test_distributed_runs_are_named_apart_from_the_notebooks_runs():
    assert run_name("dialogsum", "lora", 1) == "single_task_lora"
    assert run_name("multitask", "full", 1) == "multitask_full"
    assert run_name("dialogsum", "full", 2) == "single_task_full_x2procs"


def test_engine_options_reach_the_trainer(monkeypatch):
    import argparse

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = argparse.Namespace(deepspeed="ds.json", fsdp=None, fsdp_config=None, ddp_backend=None)
    assert trainer_overrides(args, world_size=1) == {"deepspeed": "ds.json"}
    assert trainer_overrides(args, world_size=2) == {"deepspeed": "ds.json", "ddp_backend": "gloo", "use_cpu": True}
