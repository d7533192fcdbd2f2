"""LoRA's promise, checked after real training: the base weights stay as they were, switching the adapter off
gives the base model back exactly, and merging the adapter gives a model that differs from the base."""

from __future__ import annotations

import pytest
import torch
from conftest import micro_pairs

from utils import modeling, training


@pytest.fixture(scope="module")
def trained(micro_model_dir, tmp_path_factory):
    """A LoRA run trained for a few steps on the micro model (own results folder), and a fresh base."""
    import dataclasses

    from utils.config import PROFILES

    profile = dataclasses.replace(
        PROFILES["smoke"], name="pytest-lora", model=str(micro_model_dir), train_steps=6, batch_size=4,
        eval_batch_size=8, lr_lora=1e-2, lora_r=4, lora_alpha=8, max_source_length=64, max_target_length=16,
        max_new_tokens=8, n_checkpoints=1, n_validation=8,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))
        run = training.train("promise", "lora", micro_pairs(24), profile)
        yield run, modeling.load_model(str(micro_model_dir))


def _base_weights_of(peft_model) -> dict[str, torch.Tensor]:
    """The wrapped model's own (non-adapter) weights, under the base model's parameter names."""
    state = peft_model.get_base_model().state_dict()
    return {name.replace(".base_layer", ""): value for name, value in state.items() if "lora_" not in name}


def _logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(list(micro_pairs(3, seed=7)["source"]), return_tensors="pt", padding=True)
    labels = tokenizer(list(micro_pairs(3, seed=7)["target"]), return_tensors="pt", padding=True)["input_ids"]
    model.eval()
    with torch.no_grad():
        return model(**batch, labels=labels).logits


def test_training_changed_only_the_adapters(trained):
    run, base = trained
    base_state = base.state_dict()
    weights = _base_weights_of(run.model)
    assert set(weights) == set(base_state)
    changed = [name for name, value in weights.items() if not torch.equal(value, base_state[name])]
    assert changed == [], f"LoRA training changed base weights: {changed[:3]}"
    adapters = {n: p for n, p in run.model.named_parameters() if "lora_B" in n}
    assert adapters and any(p.abs().sum() > 0 for p in adapters.values()), "lora_B starts at 0; training moves it"


def test_adapter_off_gives_the_base_models_logits_and_on_does_not(trained, micro_model_dir):
    run, base = trained
    tokenizer = modeling.load_tokenizer(str(micro_model_dir))
    expected = _logits(base, tokenizer)
    with run.model.disable_adapter():
        off = _logits(run.model, tokenizer)
    assert torch.equal(off, expected)
    assert not torch.allclose(_logits(run.model, tokenizer), expected, atol=1e-4)


def test_merged_model_differs_from_the_base(trained):
    run, base = trained
    reloaded = training.load_run(run.path)  # merge a reloaded copy: the run's own model stays as trained
    merged = reloaded.model.merge_and_unload()
    assert modeling.weights_fingerprint(merged) != modeling.weights_fingerprint(base)
    base_state = base.state_dict()
    differing = [n for n, v in merged.state_dict().items() if not torch.equal(v, base_state[n])]
    assert differing and all(n.split(".")[-2] in run.settings.lora["targets"] for n in differing), differing
