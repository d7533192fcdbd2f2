"""Training helpers: tokenization, collation, the training loop, the run cache and resuming."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch
from conftest import micro_pairs, run_dir
from transformers import TrainerCallback

from utils import modeling, training


def _weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# --- tokenization and collation --------------------------------------------------------------------


def test_tokenize_uses_text_target_and_each_length_limit(tokenizer, micro_profile):
    pairs = micro_pairs(4)
    profile = dataclasses.replace(micro_profile, max_source_length=10, max_target_length=5)
    tokens = training.tokenize(pairs, tokenizer, profile)
    assert set(tokens.column_names) == {"input_ids", "attention_mask", "labels", "length"}
    full_target = tokenizer(text_target=pairs["target"][0])["input_ids"]
    assert len(full_target) > 5, "the test needs a target longer than the limit"
    assert tokens["labels"][0] == tokenizer(text_target=pairs["target"][0], max_length=5, truncation=True)["input_ids"]
    assert all(len(ids) <= 10 for ids in tokens["input_ids"])
    assert tokens["length"] == [len(ids) for ids in tokens["input_ids"]]


def test_a_long_prompt_keeps_its_start_and_its_end(tokenizer, micro_profile):
    from datasets import Dataset

    source = "summarize : " + " ".join(["book pen lamp"] * 60) + " summary :"
    profile = dataclasses.replace(micro_profile, max_source_length=40)
    assert len(tokenizer(source)["input_ids"]) > 40, "the test needs a prompt longer than the limit"
    with pytest.warns(UserWarning, match="1 of 2 prompts"):
        ids = training.tokenize(Dataset.from_dict({"source": [source, "a book"], "target": ["x", "y"]}),
                                tokenizer, profile)["input_ids"]
    assert len(ids[0]) <= 40
    text = tokenizer.decode(ids[0], skip_special_tokens=True)
    assert text.startswith("summarize : book pen lamp") and text.endswith("lamp summary :")
    assert ids[0][-1] == tokenizer.eos_token_id and " ... " in text
    assert ids[1] == tokenizer("a book")["input_ids"]  # short prompts untouched


def _batch(tokenizer, profile, sources, targets, model):
    from datasets import Dataset

    tokens = training.tokenize(Dataset.from_dict({"source": sources, "target": targets}), tokenizer, profile)
    features = [{k: v for k, v in row.items() if k != "length"} for row in tokens]
    return features, training.collator(tokenizer, model)(features)


def test_collator_masks_label_padding_with_minus_100(tokenizer, micro_profile, micro_model_dir):
    model = modeling.load_model(str(micro_model_dir))
    targets = ["a", "a book", "#Person1# wants to buy a book and a pen, please."]
    features, batch = _batch(tokenizer, micro_profile, ["hi", "hi you", "here is the book"], targets, model)
    labels = batch["labels"]
    assert (labels == tokenizer.pad_token_id).sum() == 0, "pad ids must never be scored by the loss"
    for row, feature in zip(labels, features, strict=True):
        n = len(feature["labels"])
        assert row[:n].tolist() == feature["labels"]
        assert (row[n:] == -100).all()
    assert (labels == -100).sum() == sum(labels.shape[1] - len(f["labels"]) for f in features) > 0


def test_collator_pads_dynamically_to_the_batch_maximum(tokenizer, micro_profile, micro_model_dir):
    model = modeling.load_model(str(micro_model_dir))
    sources = ["hi", "Summarize the following conversation.", "a"]
    features, batch = _batch(tokenizer, micro_profile, sources, ["a", "a b c", "b"], model)
    longest_input = max(len(f["input_ids"]) for f in features)
    longest_label = max(len(f["labels"]) for f in features)
    assert longest_input < micro_profile.max_source_length  # so padding to the limit would show
    assert batch["input_ids"].shape == (3, longest_input)
    assert batch["attention_mask"].sum(dim=1).tolist() == [len(f["input_ids"]) for f in features]
    assert batch["labels"].shape == batch["decoder_input_ids"].shape == (3, longest_label)
    assert (batch["decoder_input_ids"][:, 0] == model.config.decoder_start_token_id).all()


def test_training_never_uses_fp16(micro_profile, tmp_path):
    settings = training.RunSettings.from_profile("x", "full", micro_profile)
    args = training.training_arguments(settings, tmp_path, micro_profile, n_checkpoints=2, evaluate=False)
    assert not args.fp16
    assert args.bf16 == (training.precision() == "bf16")
    assert args.seed == micro_profile.seed


# --- training, the base model, caching ---------------------------------------------------------------


def test_loss_goes_down(micro_profile):
    run = training.train("loss", "full", micro_pairs(32), micro_profile, steps=30)
    losses = training.history_frame(run.log_history)["loss"].dropna()
    assert len(losses) >= 5
    assert losses.iloc[-3:].mean() < 0.6 * losses.iloc[:2].mean()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_training_leaves_the_base_model_unchanged(micro_profile, micro_model_dir, method):
    before_file = (micro_model_dir / "model.safetensors").read_bytes()
    before = modeling.weights_fingerprint(modeling.load_model(str(micro_model_dir)))
    run = training.train("base", method, micro_pairs(16), micro_profile, steps=4)
    assert modeling.weights_fingerprint(modeling.load_model(str(micro_model_dir))) == before
    assert (micro_model_dir / "model.safetensors").read_bytes() == before_file
    trained = run.model.merge_and_unload() if method == "lora" else run.model
    assert modeling.weights_fingerprint(trained) != before, "training should have changed the copy"


def test_lora_trains_a_small_fraction_and_saves_only_the_adapter(micro_profile):
    run = training.train("lora", "lora", micro_pairs(16), micro_profile, steps=4)
    assert 0 < run.trainable_fraction < 0.2
    final = run.path / "final"
    assert (final / "adapter_model.safetensors").exists()
    assert not (final / "model.safetensors").exists()
    assert run.summary["checkpoint_mb"] == pytest.approx(modeling.folder_size_mb(final))


def test_second_call_loads_the_cached_run(micro_profile, monkeypatch, capsys):
    pairs = micro_pairs(16)
    first = training.train("cache", "full", pairs, micro_profile, micro_pairs(4, seed=1), steps=4)
    monkeypatch.setattr(training.Seq2SeqTrainer, "train", lambda *a, **k: pytest.fail("trained again instead of loading"))
    second = training.train("cache", "full", pairs, micro_profile, micro_pairs(4, seed=1), steps=4)
    assert "Loaded the cached run" in capsys.readouterr().out
    assert second.path == first.path
    assert second.log_history == first.log_history
    assert modeling.weights_fingerprint(second.model) == modeling.weights_fingerprint(first.model)


def test_cache_key_changes_with_settings_data_and_base(micro_profile, tmp_path):
    from conftest import build_micro_model

    pairs = micro_pairs(8)
    settings = training.RunSettings.from_profile("k", "full", micro_profile)
    key = run_dir(settings, pairs, micro_profile)
    assert run_dir(settings, pairs, micro_profile) == key
    assert run_dir(dataclasses.replace(settings, learning_rate=1.0), pairs, micro_profile) != key
    assert run_dir(settings, micro_pairs(8, seed=5), micro_profile) != key
    other_base = build_micro_model(tmp_path / "other", seed=1)
    assert run_dir(dataclasses.replace(settings, model=str(other_base)), pairs, micro_profile) != key


def _lora_key_inputs(micro_profile):
    return training.RunSettings.from_profile("k", "lora", micro_profile), micro_pairs(8), micro_pairs(4, seed=1)


def _edited_weights(model_dir, folder):
    """A copy of the model with one weight changed."""
    from safetensors.torch import load_file, save_file

    copy = shutil.copytree(model_dir, folder)
    weights = load_file(copy / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] += 1.0
    save_file(weights, copy / "model.safetensors")
    return copy


#: Changes that alter the trained weights or what a run saves: each must give another run (issue 19).
KEY_CHANGES = {
    "LoRA rank": lambda s, v, p, m, t: (dataclasses.replace(s, lora={**s.lora, "r": s.lora["r"] * 2}), v, p, {}),
    "LoRA targets": lambda s, v, p, m, t: (dataclasses.replace(s, lora={**s.lora, "targets": ["q"]}), v, p, {}),
    "LoRA alpha": lambda s, v, p, m, t: (dataclasses.replace(s, lora={**s.lora, "alpha": 1}), v, p, {}),
    "max source length": lambda s, v, p, m, t: (s, v, dataclasses.replace(p, max_source_length=8), {}),
    "max target length": lambda s, v, p, m, t: (s, v, dataclasses.replace(p, max_target_length=2), {}),
    "checkpoint count": lambda s, v, p, m, t: (s, v, p, {"n_checkpoints": 5}),
    "seed": lambda s, v, p, m, t: (dataclasses.replace(s, seed=7), v, p, {}),
    "batch size": lambda s, v, p, m, t: (dataclasses.replace(s, batch_size=2), v, p, {}),
    "no validation data": lambda s, v, p, m, t: (s, None, p, {}),
    "other validation data": lambda s, v, p, m, t: (s, micro_pairs(4, seed=2), p, {}),
    "validation decoding length": lambda s, v, p, m, t: (s, v, dataclasses.replace(p, max_new_tokens=3), {}),
    "another base model": lambda s, v, p, m, t: (
        dataclasses.replace(s, model=str(_edited_weights(m, t / "edited"))), v, p, {}),
}
#: Changes left out of the key on purpose (see ``training.run_key``): each must find the same run. Each gives
#: the run before and after the change, as (settings, validation data, profile).
KEY_KEEPS = {
    "model folder moved": lambda s, v, p, m, t: (
        (s, v, p), (dataclasses.replace(s, model=str(shutil.copytree(m, t / "moved" / "model"))), v, p)),
    "evaluation batch size": lambda s, v, p, m, t: ((s, v, p), (s, v, dataclasses.replace(p, eval_batch_size=1))),
    "decoding length without validation": lambda s, v, p, m, t: (
        (s, None, p), (s, None, dataclasses.replace(p, max_new_tokens=3))),
}


@pytest.mark.parametrize("change", KEY_CHANGES, ids=list(KEY_CHANGES))
def test_cache_key_changes_with_what_changes_the_run(change, micro_profile, micro_model_dir, tmp_path):
    settings, pairs, validation = _lora_key_inputs(micro_profile)
    key = run_dir(settings, pairs, micro_profile, eval_data=validation)
    settings2, validation2, profile2, extra = KEY_CHANGES[change](settings, validation, micro_profile,
                                                                  micro_model_dir, tmp_path)
    assert run_dir(settings2, pairs, profile2, extra.get("n_checkpoints"), validation2) != key


@pytest.mark.parametrize("change", KEY_KEEPS, ids=list(KEY_KEEPS))
def test_cache_key_ignores_what_does_not_change_the_run(change, micro_profile, micro_model_dir, tmp_path):
    settings, pairs, validation = _lora_key_inputs(micro_profile)
    (s0, v0, p0), (s1, v1, p1) = KEY_KEEPS[change](settings, validation, micro_profile, micro_model_dir, tmp_path)
    assert run_dir(s1, pairs, p1, eval_data=v1) == run_dir(s0, pairs, p0, eval_data=v0)


def test_every_run_setting_but_the_name_is_in_the_cache_key(micro_profile, micro_model_dir, tmp_path):
    """A field added to RunSettings later must be added here, and so reach the trainer (and its key)."""
    settings, pairs, _ = _lora_key_inputs(micro_profile)
    key = run_dir(settings, pairs, micro_profile).name
    changed = {"method": "full", "model": str(_edited_weights(micro_model_dir, tmp_path / "other")),
               "steps": settings.steps + 1, "learning_rate": settings.learning_rate / 2,
               "batch_size": settings.batch_size + 1, "seed": settings.seed + 1, "lora": {**settings.lora, "dropout": 0.5}}
    assert set(changed) | {"name"} == {f.name for f in dataclasses.fields(training.RunSettings)}
    for name, value in changed.items():
        assert run_dir(dataclasses.replace(settings, **{name: value}), pairs, micro_profile).name != key, name
    other = run_dir(dataclasses.replace(settings, name="other"), pairs, micro_profile)
    assert (other.parent.name, other.name) == ("other", key)


def test_force_retrains(micro_profile, capsys):
    pairs = micro_pairs(8)
    training.train("force", "full", pairs, micro_profile, steps=2)
    capsys.readouterr()
    training.train("force", "full", pairs, micro_profile, steps=2, force=True)
    out = capsys.readouterr().out
    assert "Loaded the cached run" not in out and "Trained in" in out


def test_validation_is_scored_at_every_checkpoint(micro_profile):
    run = training.train("val", "full", micro_pairs(16), micro_profile, micro_pairs(4, seed=1), steps=6,
                         n_checkpoints=3)
    history = training.history_frame(run.log_history)
    assert training.early_checkpoints(6) == [2] and training.early_checkpoints(200) == [10, 25]
    assert history["eval_loss"].dropna().index.tolist() == [0, 2, 4, 6]  # step 0: the base model
    assert history["eval_rouge1"].dropna().between(0, 1).all()
    assert [step for step, _ in training.checkpoints(run.path)] == [2, 4, 6]
    assert run.summary["train_seconds"] > 0 and run.summary["validation_seconds"] > 0


# --- interruption and resuming --------------------------------------------------------------------------


class _Crash(TrainerCallback):
    """Kills a training run at the end of step ``at`` (after the checkpoint before it was saved)."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"simulated crash at step {self.at}")


@pytest.mark.parametrize("method", ["full", "lora"])
def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(micro_profile, method):
    pairs = micro_pairs(24)
    steps = dict(steps=9, n_checkpoints=3)  # checkpoints at steps 3, 6 and 9
    with pytest.raises(KeyboardInterrupt):
        training.train("resume", method, pairs, micro_profile, callbacks=[_Crash(at=5)], **steps)
    run_path = run_dir(training.RunSettings.from_profile("resume", method, micro_profile, 9),
                                pairs, micro_profile, 3)
    assert training.last_checkpoint(run_path).name == "checkpoint-3"
    assert not (run_path / "final").exists()

    resumed = training.train("resume", method, pairs, micro_profile, **steps)
    assert resumed.summary["resumed_from"] == "checkpoint-3"
    straight = training.train("straight", method, pairs, micro_profile, **steps)
    assert straight.summary["resumed_from"] is None

    def losses(run):
        return training.history_frame(run.log_history)["loss"].dropna().tolist()

    assert losses(resumed) == pytest.approx(losses(straight), abs=1e-6)
    trained, reference = _weights(resumed.model), _weights(straight.model)
    assert trained.keys() == reference.keys()
    for name, value in trained.items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=1e-6, msg=name)


def test_incomplete_checkpoint_is_skipped_when_resuming(micro_profile):
    pairs = micro_pairs(16)
    with pytest.raises(KeyboardInterrupt):
        training.train("partial", "full", pairs, micro_profile, steps=6, n_checkpoints=3,
                       callbacks=[_Crash(at=5)])
    path = run_dir(training.RunSettings.from_profile("partial", "full", micro_profile, 6), pairs,
                            micro_profile, 3)
    (path / "checkpoint-4" / "trainer_state.json").unlink()  # as if the crash hit while saving step 4
    assert training.last_checkpoint(path).name == "checkpoint-2"
    run = training.train("partial", "full", pairs, micro_profile, steps=6, n_checkpoints=3)
    assert run.summary["resumed_from"] == "checkpoint-2"


# --- loading runs and checkpoints ------------------------------------------------------------------------


def test_load_run_round_trips_a_lora_run(micro_profile):
    run = training.train("reload", "lora", micro_pairs(16), micro_profile, steps=4)
    loaded = training.load_run(run.path)
    assert loaded.settings == run.settings
    assert modeling.weights_fingerprint(loaded.model) == modeling.weights_fingerprint(run.model)


def test_load_run_of_an_unfinished_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="Train it with training.train"):
        training.load_run(tmp_path)


def test_lora_checkpoint_without_safetensors_is_refused(tmp_path, micro_model_dir):
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(modeling.ModelLoadError, match="safetensors"):
        training.load_checkpoint(tmp_path, "lora", str(micro_model_dir))


def test_history_frame_has_one_row_per_step():
    history = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}, {"step": 2, "eval_loss": 2.5},
               {"step": 2, "train_runtime": 1.0, "train_loss": 2.5}]
    frame = training.history_frame(history)
    assert frame.index.tolist() == [1, 2]
    assert frame.loc[2, "loss"] == 2.0 and frame.loc[2, "eval_loss"] == 2.5
    assert "train_runtime" not in frame.columns


def test_checkpoints_are_ordered_by_step_and_only_complete_ones_resume(tmp_path):
    for step in (10, 9, 2):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-11.partial").mkdir()  # not a checkpoint folder's name
    (tmp_path / "checkpoint-12").write_text("")  # a file, not a folder
    assert [step for step, _ in training.checkpoints(tmp_path)] == [2, 9, 10]  # by number, not by name
    assert training.last_checkpoint(tmp_path).name == "checkpoint-10"
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 1')  # cut short
    assert training.last_checkpoint(tmp_path).name == "checkpoint-9"
    assert training.checkpoints(tmp_path / "missing") == [] and training.last_checkpoint(tmp_path / "missing") is None
