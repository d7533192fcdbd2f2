"""Shared test fixtures: a micro T5 built in seconds, a profile pointing at it, prompt/target pairs.

The micro model is a real ``T5ForConditionalGeneration`` with random weights (a few thousand parameters)
and a small word-and-character tokenizer, saved as safetensors in a temporary folder, so anything that
loads a model with ``from_pretrained`` can be tested without the course's tiny model and without network.
"""

from __future__ import annotations

import dataclasses
import string
from pathlib import Path

import pytest

#: Words the micro tokenizer knows whole (everything else is spelled with single characters).
MICRO_WORDS = (
    "#Person1# #Person2# Summarize the following conversation Summary : . , ? ! I you want to buy a an "
    "here is are thanks please wants and of book apple pen lamp chair cup hat bag map kite coat sock"
).split()
MICRO_ITEMS = ("book", "apple", "pen", "lamp", "chair", "cup", "hat", "bag", "map", "kite", "coat", "sock")


def micro_tokenizer():
    """A T5 tokenizer (pad 0, eos 1, unk 2) over :data:`MICRO_WORDS` plus single characters."""
    from transformers import T5Tokenizer

    chars = sorted(set(string.ascii_letters + string.digits + string.punctuation))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{word}", -3.0) for word in MICRO_WORDS]
    vocab += [(char, -6.0) for char in chars] + [(f"▁{char}", -6.5) for char in chars]
    return T5Tokenizer(vocab=list(dict(vocab).items()), extra_ids=0)


def micro_t5(vocab_size: int, seed: int = 0, **sizes):
    """A randomly initialised micro ``T5ForConditionalGeneration`` (pad 0, eos 1, decoder start 0); ``sizes``
    override the config's defaults (d_model 32, two layers each side, gated-GELU)."""
    import torch
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    sizes = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4,
             "feed_forward_proj": "gated-gelu", **sizes}
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(T5Config(vocab_size=vocab_size, pad_token_id=0, eos_token_id=1,
                                                decoder_start_token_id=0, **sizes))
    model.generation_config = GenerationConfig(decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return model


def build_micro_model(folder: Path, seed: int = 0, dropout: float = 0.1) -> Path:
    """Save a :func:`micro_t5` and its tokenizer (:func:`micro_tokenizer`) to ``folder`` (safetensors only)."""
    tokenizer = micro_tokenizer()
    model = micro_t5(len(tokenizer), seed, dropout_rate=dropout)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def run_dir(settings, pairs, profile, n_checkpoints=None, eval_data=None):
    """The folder ``training.train`` would cache this run in (the recipe's trainer, keyed)."""
    from utils import training

    return training.keyed_folder(training.recipe_trainer(settings, pairs, profile, eval_data, n_checkpoints))


def micro_pairs(n: int = 32, seed: int = 0):
    """``n`` prompt/target pairs (``source``/``target``) of a trivially learnable summarization task."""
    import random

    from datasets import Dataset

    rng = random.Random(seed)
    sources, targets = [], []
    for _ in range(n):
        item = rng.choice(MICRO_ITEMS)
        sources.append(f"Summarize the following conversation.\n\n#Person1#: I want to buy a {item}, please.\n"
                       f"#Person2#: Here is the {item}.\n\nSummary:")
        targets.append(f"#Person1# wants to buy a {item}.")
    return Dataset.from_dict({"source": sources, "target": targets})


def pytest_configure(config):
    """One CPU thread for torch: the micro models' tiny operations run many times faster that way than
    with threads waiting on each other (badly so on a busy 2-core machine)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def micro_model_dir(tmp_path_factory) -> Path:
    """A session-wide micro T5 folder (config.json, model.safetensors, tokenizer). Never modify it."""
    return build_micro_model(tmp_path_factory.mktemp("micro-t5"))


@pytest.fixture
def tokenizer(micro_model_dir):
    """The micro model's tokenizer (test_evaluation.py has its own word-level one)."""
    from utils import modeling

    return modeling.load_tokenizer(str(micro_model_dir))


@pytest.fixture
def tmp_results(tmp_path, monkeypatch) -> Path:
    """Send everything a profile writes (``results/<profile>/``) to a temporary folder."""
    from utils import config

    folder = tmp_path / "results"
    monkeypatch.setattr(config, "RESULTS_DIR", folder)
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(folder))
    return folder


@pytest.fixture
def micro_profile(micro_model_dir, tmp_results):
    """The smoke profile on the micro model, with seconds-long budgets and results in a temporary folder."""
    from utils.config import PROFILES

    return dataclasses.replace(
        PROFILES["smoke"], name="pytest", model=str(micro_model_dir), train_steps=12, batch_size=4,
        eval_batch_size=8, lr_full=3e-3, lr_lora=1e-2, lora_r=4, lora_alpha=8, max_source_length=64,
        max_target_length=16, max_new_tokens=8, n_checkpoints=3, n_validation=8,
    )


class NetworkBlocked(OSError):
    """A test tried to open a connection beyond this machine."""


def offline_state(patch: pytest.MonkeyPatch, hf_home: Path) -> None:
    """Make the Hugging Face libraries offline for real, and refuse any connection beyond loopback.

    ``huggingface_hub`` and ``datasets`` read ``HF_HUB_OFFLINE`` and ``HF_HOME`` once, at import, and the
    test session has imported them long before: setting the variables alone changes nothing. So their
    constants are patched too, and a socket guard turns any remaining network attempt into an error.
    """
    import socket

    import datasets.config
    import huggingface_hub.constants as hub_constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        patch.setenv(name, "1")
    patch.setenv("HF_HOME", str(hf_home))
    patch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    patch.setattr(hub_constants, "HF_HOME", str(hf_home))
    patch.setattr(hub_constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    patch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    real_connect = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and sock.family != socket.AF_UNIX:
            raise NetworkBlocked(f"tests run offline: a connection to {address} was refused")
        return real_connect(sock, address)

    patch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No network and an empty Hugging Face cache, for real: loading must work from the folder alone."""
    with pytest.MonkeyPatch.context() as patch:
        offline_state(patch, tmp_path_factory.mktemp("hf-home"))
        yield
