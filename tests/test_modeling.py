"""Model loading (safetensors only), LoRA adapters, parameter counts and weight fingerprints."""

from __future__ import annotations

import json

import pytest
import torch

from utils import modeling


def test_loads_a_local_safetensors_folder_in_eval_mode(micro_model_dir):
    model = modeling.load_model(str(micro_model_dir))
    assert not model.training
    tokenizer = modeling.load_tokenizer(str(micro_model_dir))
    assert tokenizer.pad_token_id == model.config.pad_token_id == 0


def test_pickle_only_folder_is_refused_with_advice(tmp_path, micro_model_dir):
    (tmp_path / "config.json").write_text((micro_model_dir / "config.json").read_text())
    torch.save({"shared.weight": torch.zeros(2, 2)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(modeling.ModelLoadError) as error:
        modeling.load_model(str(tmp_path))
    message = str(error.value)
    assert "pytorch_model.bin" in message and "safetensors" in message
    assert "save_pretrained" in message  # says how to fix it


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(modeling.ModelLoadError, match="no config.json"):
        modeling.load_model(str(tmp_path))


def test_lora_unknown_target_module_names_the_real_ones(micro_model_dir, micro_profile):
    model = modeling.load_model(str(micro_model_dir))
    with pytest.raises(ValueError) as error:
        modeling.add_lora(model, micro_profile, targets=("query", "v"))
    message = str(error.value)
    assert "'query'" in message
    for name in ("q", "k", "v", "o"):
        assert f"'{name}'" in message  # lists what exists


def test_lora_trains_only_adapters(micro_model_dir, micro_profile):
    model = modeling.add_lora(modeling.load_model(str(micro_model_dir)), micro_profile, r=2, targets=("q", "v"))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    counts = modeling.parameter_counts(model)
    d_model = model.config.d_model
    inner = model.config.num_heads * model.config.d_kv
    n_attention = model.config.num_layers + 2 * model.config.num_decoder_layers  # self + cross in the decoder
    assert counts["trainable"] == n_attention * 2 * 2 * (d_model + inner)  # q and v, A (r x in) + B (out x r)
    assert 0 < counts["trainable_fraction"] < 0.5


def test_parameter_counts_of_a_full_model(micro_model_dir):
    counts = modeling.parameter_counts(modeling.load_model(str(micro_model_dir)))
    assert counts["trainable"] == counts["total"] > 0
    assert counts["trainable_fraction"] == 1.0


def test_weights_fingerprint_sees_any_change(micro_model_dir):
    model = modeling.load_model(str(micro_model_dir))
    before = modeling.weights_fingerprint(model)
    assert modeling.weights_fingerprint(modeling.load_model(str(micro_model_dir))) == before
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    assert modeling.weights_fingerprint(model) != before


def test_linear_module_names_of_t5(micro_model_dir):
    names = modeling.linear_module_names(modeling.load_model(str(micro_model_dir)))
    assert {"q", "k", "v", "o", "wi_0", "wi_1", "wo", "lm_head"} <= set(names)


def test_folder_size_counts_only_weights(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"x" * 2_000_000)
    (tmp_path / "notes.json").write_text(json.dumps({"big": "y" * 1000}))
    assert modeling.folder_size_mb(tmp_path) == pytest.approx(2.0)
