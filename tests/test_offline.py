"""The tests' offline state is real: the Hub libraries refuse to download and no socket leaves the machine."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import NetworkBlocked

from utils.config import TINY_MODEL_DIR


def test_hub_downloads_are_refused_at_once(offline):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert huggingface_hub.is_offline_mode()
    started = time.perf_counter()
    with pytest.raises((LocalEntryNotFoundError, huggingface_hub.errors.OfflineModeIsEnabled)):
        huggingface_hub.hf_hub_download("google/flan-t5-base", "config.json")
    assert time.perf_counter() - started < 5, "offline mode must not wait on the network"


def test_no_connection_leaves_the_machine(offline):
    with pytest.raises(NetworkBlocked, match="refused"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1: never a real host


def test_the_committed_model_loads_from_its_folder_alone(offline):
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(TINY_MODEL_DIR)("#Person1#: hello")["input_ids"][-1] == 1  # </s>
    with pytest.raises(OSError):
        AutoTokenizer.from_pretrained("google/flan-t5-base")  # a Hub id: offline, so not found


# ---------------------------------------------------------------------------------------------
# Online or offline is decided once, as utils is imported, before the Hugging Face libraries are
# ---------------------------------------------------------------------------------------------

_STATE = """
import time
import utils  # first, as in every notebook
import datasets.config
import huggingface_hub
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled
from utils import config
state = [huggingface_hub.is_offline_mode(), datasets.config.HF_HUB_OFFLINE, config.hub_reachable()]
if state[0]:
    started = time.perf_counter()
    try:
        huggingface_hub.hf_hub_download("google/flan-t5-base", "config.json")
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        state.append(time.perf_counter() - started < 5)
print("STATE", state)
"""


def _state(tmp_path, **env) -> list:
    import os
    import subprocess
    import sys

    from utils import config

    clean = {k: v for k, v in os.environ.items()
             if k not in (*config.OFFLINE_VARIABLES, "TRANSFORMERS_OFFLINE", config.DECIDED_FOR, "HF_ENDPOINT")}
    clean.update(PYTHONPATH=str(config.ROOT), HF_HOME=str(tmp_path / "hf-home"), COURSE_HUB_HOST="localhost", **env)
    done = subprocess.run([sys.executable, "-c", _STATE], env=clean, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return eval(next(line for line in done.stdout.splitlines() if line.startswith("STATE"))[6:])


@pytest.fixture
def answering_hub():
    """A local server that answers like the Hub (200): its address, for HF_ENDPOINT."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_an_offline_profile_starts_the_hub_libraries_offline(tmp_path):
    """Nothing patched: the libraries read the variables utils set before they were imported."""
    assert _state(tmp_path, COURSE_PROFILE="tiny") == [True, True, False, True]  # and a download is refused at once


def test_the_full_profile_goes_offline_only_when_the_hub_does_not_answer(tmp_path, answering_hub):
    assert _state(tmp_path, COURSE_PROFILE="full") == [True, True, False, True]  # localhost:443 is closed
    assert _state(tmp_path, COURSE_PROFILE="full", HF_ENDPOINT=answering_hub) == [False, False, True]


def test_a_decision_for_another_profile_is_taken_again_and_the_users_own_wins(tmp_path, answering_hub):
    from utils import config

    inherited = {config.DECIDED_FOR: "tiny", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}  # as from the runner
    assert _state(tmp_path, COURSE_PROFILE="full", HF_ENDPOINT=answering_hub, **inherited) == [False, False, True]
    assert _state(tmp_path, COURSE_PROFILE="full", HF_ENDPOINT=answering_hub, HF_HUB_OFFLINE="1")[:3] == [
        True, True, False]  # set by the user: kept


_TRAINER = """
import os
import runpy
import sys
import utils  # as python -m utils.train does: the package first, decided for $COURSE_PROFILE
sys.argv = ["utils/train.py", "--profile", "%s", "--help"]
try:
    runpy.run_module("utils.train", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
import huggingface_hub
print("STATE", [huggingface_hub.is_offline_mode(), os.environ["COURSE_PROFILE"]])
"""


@pytest.mark.parametrize(("profile", "expected"), [("full", [False, "full"]), ("smoke", [True, "tiny"])])
def test_the_trainer_decides_hub_access_for_its_profile_before_the_libraries_load(tmp_path, answering_hub, profile,
                                                                                   expected):
    """``python -m utils.train --profile full`` from a ``tiny`` environment uses the Hub, without restarting."""
    import os
    import subprocess
    import sys

    from utils import config

    env = {k: v for k, v in os.environ.items()
           if k not in (*config.OFFLINE_VARIABLES, "TRANSFORMERS_OFFLINE", config.DECIDED_FOR)}
    env.update(PYTHONPATH=str(config.ROOT), HF_HOME=str(tmp_path / "hf-home"), COURSE_PROFILE="tiny",
               HF_ENDPOINT=answering_hub)
    done = subprocess.run([sys.executable, "-c", _TRAINER % profile], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--profile" in done.stdout  # the --help it was asked for
    assert eval(next(line for line in done.stdout.splitlines() if line.startswith("STATE"))[6:]) == expected
