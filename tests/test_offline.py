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
