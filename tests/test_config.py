"""Profiles: names, overrides and errors."""

import pytest

from utils.config import PROFILES, ProfileError, get_profile


def test_default_profile_is_tiny(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert get_profile().name == "tiny"


@pytest.mark.parametrize("name", ["tiny", "smoke", "full"])
def test_profiles_by_environment(monkeypatch, name):
    monkeypatch.setenv("COURSE_PROFILE", name)
    assert get_profile().name == name


def test_unknown_profile_lists_valid_names(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "huge")
    with pytest.raises(ProfileError) as error:
        get_profile()
    message = str(error.value)
    assert "'huge'" in message
    for name in PROFILES:
        assert name in message


def test_profiles_differ_in_names_and_budgets_only():
    tiny, smoke = PROFILES["tiny"], PROFILES["smoke"]
    assert tiny.model == smoke.model and tiny.target == smoke.target
    assert smoke.train_steps < tiny.train_steps
    assert PROFILES["full"].model == "google/flan-t5-base"
    assert not PROFILES["full"].offline and tiny.offline


def test_model_and_budget_overrides(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", "google/flan-t5-small")
    monkeypatch.setenv("COURSE_TRAIN_STEPS", "50")
    monkeypatch.setenv("COURSE_EVAL_DIALOGUES", "20")
    monkeypatch.setenv("COURSE_MAX_NEW_TOKENS", "24")
    profile = get_profile("full")
    assert profile.model == "google/flan-t5-small"
    assert profile.train_steps == 50 and profile.n_eval_dialogues == 20 and profile.max_new_tokens == 24
    assert PROFILES["full"].train_steps != 50  # the table itself is untouched


@pytest.mark.parametrize("value", ["ten", "0", "-3"])
def test_bad_budget_override(monkeypatch, value):
    monkeypatch.setenv("COURSE_TRAIN_STEPS", value)
    with pytest.raises(ProfileError, match="COURSE_TRAIN_STEPS"):
        get_profile("tiny")


def test_set_seed_repeats_python_numpy_and_torch_draws():
    import random

    import numpy as np
    import torch

    from utils.config import set_seed

    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    set_seed(3)
    first = draws()
    set_seed(3)
    assert draws() == first
    set_seed(4)
    assert all(a != b for a, b in zip(draws(), first, strict=True))
