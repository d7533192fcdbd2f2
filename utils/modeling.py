"""Models, tokenizers and LoRA adapters, loaded the same way in every profile: weights from safetensors only,
``trust_remote_code`` never enabled (a checkpoint is data, never code)."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import torch
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

from utils import config, data, results
from utils.config import Profile, get_profile

#: PEFT 0.21 reads transformers 5's deprecated ``is_gradient_checkpointing`` whenever it wraps or loads a
#: model; no learner can act on it, so exactly this warning is silenced (every other shows).
PEFT_DEPRECATION = {"message": "`is_gradient_checkpointing` is deprecated", "category": FutureWarning,
                    "module": "transformers.modeling_utils"}

#: transformers 5's ``T5Config`` always ties the embeddings, so loading a T5 with its own output layer logs
#: this and a LoRA merge warns the next; nothing is wrong (filtered by :func:`utils.notebook.quiet_libraries`).
UNTIED_T5_LOAD = "The tied weights mapping and config for this model specifies to tie shared.weight to lm_head.weight"
UNTIED_T5_MERGE = {"message": "Input and output embeddings are no longer tied after merging", "category": UserWarning}

_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


class ModelLoadError(RuntimeError):
    """A model folder or name that cannot be loaded safely."""


def _check_safetensors(folder: Path) -> None:
    """Refuse a local model folder without intact ``*.safetensors`` weights (pickle weights can run code)."""
    if not (folder / "config.json").exists():
        raise ModelLoadError(f"{folder} is not a model folder (no config.json): give a Hub id such as "
                             "google/flan-t5-base or a save_pretrained folder (`make model` rebuilds ours).")
    if not list(folder.glob("*.safetensors")):
        pickled = [p.name for p in folder.iterdir() if p.name in _PICKLE_WEIGHTS]
        only = f", only pickle weights {pickled}, which the course refuses to load" if pickled else ""
        raise ModelLoadError(f"No *.safetensors weights in {folder}{only}. Convert it once, in a trusted "
                             "environment, with `model.save_pretrained(folder, safe_serialization=True)`.")
    for weights in sorted(folder.glob("*.safetensors")):  # a header or size cut short by a copy or a download
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except SafetensorError as error:
            raise ModelLoadError(f"The weights {weights.name} in {folder} look truncated or corrupt "
                                 f"({error}). {_restore_advice(str(folder))}") from None


def _restore_advice(name: str, otherwise: str = "") -> str:
    """How to get a good copy of a local model folder back (git or `make model` for the course's own)."""
    if not config.is_local(name):
        return otherwise
    if Path(name).expanduser().resolve() == config.TINY_MODEL_DIR.resolve():
        return (f"Restore it with `git checkout -- {config.TINY_MODEL_DIR.relative_to(config.ROOT)}` (in the "
                "course folder), or rebuild it with `make model`.")
    return "Copy the folder again, or save it again with `model.save_pretrained(folder)`."


def _from_pretrained(cls, name: str, what: str, **kwargs):
    """``cls.from_pretrained`` for a folder or a Hub id, failing fast with advice when offline."""
    kwargs.setdefault("trust_remote_code", False)
    if config.is_local(name):
        return cls.from_pretrained(name, **kwargs)
    online = config.use_hub(name, huggingface_hub.is_offline_mode())
    try:
        return cls.from_pretrained(name, local_files_only=not online, **kwargs)
    except OSError as error:
        if online:
            raise ModelLoadError(f"Could not load {what} {name!r}: {error}. Check the name (e.g. "
                                 "google/flan-t5-base) or set COURSE_MODEL to a local folder.") from error
        raise config.unavailable(name, error) from error


def load_tokenizer(model: str | Profile):
    """The tokenizer of ``model`` (a Hub id, a folder or a profile), checked against the model's config."""
    name = model.model if isinstance(model, Profile) else str(model)
    try:
        tokenizer = _from_pretrained(AutoTokenizer, name, "tokenizer")
    except (ModelLoadError, config.HubUnavailableError):
        raise
    except Exception as error:  # tokenizers' and transformers' own errors name neither the file nor a fix
        raise ModelLoadError(
            f"The tokenizer of {name!r} cannot be read ({type(error).__name__}: {str(error)[:200]}). Its files "
            f"(tokenizer.json, tokenizer_config.json) are cut short, broken or of another kind of tokenizer than "
            f"the model's. {_restore_advice(name, 'Check the name.')}") from error
    if not config.is_local(name) or (Path(name).expanduser() / "config.json").is_file():  # adapter folders have none
        _check_tokenizer(tokenizer, _from_pretrained(AutoConfig, name, "model config"), name)
    return tokenizer


def _check_tokenizer(tokenizer, model_config, name: str) -> None:
    """Refuse a tokenizer whose size or special-token ids do not match the model's config (offline, with only
    config.json cached, transformers silently builds an empty T5 tokenizer of 104 tokens)."""
    vocab_size, n = model_config.vocab_size, len(tokenizer)
    if not vocab_size // 2 <= n <= vocab_size:  # models round their matrix up (FLAN-T5: 32,100 in 32,128)
        raise ModelLoadError(
            f"The tokenizer loaded for {name!r} has {n:,} tokens, the model's vocabulary {vocab_size:,}: its "
            "files are missing from the cache or belong to another model. Cache them with `COURSE_PROFILE="
            "full python -m utils.modeling` on a machine with network, or give a folder with both.")
    wrong = []
    for role, token in (("pad", tokenizer.pad_token), ("eos", tokenizer.eos_token)):
        wanted = getattr(model_config, f"{role}_token_id", None)
        if token is None or wanted is None:
            continue
        if (got := tokenizer.convert_tokens_to_ids(token)) != wanted:
            wrong.append(f"{token} is id {got} for the tokenizer, {wanted} for the model")
        elif (piece := tokenizer.convert_ids_to_tokens(wanted)) != token:
            wrong.append(f"id {wanted} is {token} for the model, {piece!r} in the tokenizer's vocabulary")
    if wrong:
        advice = _restore_advice(name, "Load the model's own tokenizer.")
        raise ModelLoadError(f"The tokenizer loaded for {name!r} does not belong to this model: "
                             f"{'; '.join(wrong)}; every word would map to the wrong embedding. {advice}")


def load_model(model: str | Profile, **overrides):
    """A fresh copy of the seq2seq model, from safetensors only, in eval mode; ``overrides`` are settings of
    the model's config, e.g. ``dropout_rate=0.1``."""
    name = model.model if isinstance(model, Profile) else str(model)
    if config.is_local(name):
        _check_safetensors(Path(name))
    return _from_pretrained(AutoModelForSeq2SeqLM, name, "model", use_safetensors=True, **overrides).eval()


def linear_module_names(model) -> list[str]:
    """The short names of the model's linear layers (what LoRA's ``target_modules`` can name)."""
    return sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)})


def add_lora(model, profile: Profile, r: int | None = None, alpha: int | None = None,
             targets: tuple[str, ...] | None = None, dropout: float | None = None):
    """Wrap ``model`` with fresh LoRA adapters (defaults from the profile); only the adapters are trainable.
    PEFT injects the adapters into ``model`` itself, so pass a fresh copy, never the base you compare to."""
    from peft import LoraConfig, TaskType, get_peft_model

    targets = tuple(targets or profile.lora_targets)
    available = linear_module_names(model)
    if missing := [t for t in targets if t not in available]:
        raise ValueError(f"LoRA target modules {missing} do not exist in this model; its linear layers are "
                         f"{available}. For T5: ('q', 'v') or ('q', 'k', 'v', 'o', 'wi_0', 'wi_1', 'wo').")
    return get_peft_model(model, LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM, r=r or profile.lora_r, lora_alpha=alpha or profile.lora_alpha,
        lora_dropout=profile.lora_dropout if dropout is None else dropout, target_modules=list(targets)))


def parameter_counts(model) -> dict:
    """Trainable and total parameters (a shared matrix counts once) and the trainable fraction."""
    trainable, total = (model.get_nb_trainable_parameters() if hasattr(model, "get_nb_trainable_parameters")
                        else (model.num_parameters(only_trainable=True), model.num_parameters()))  # not PEFT
    return {"trainable": trainable, "total": total, "trainable_fraction": trainable / total if total else 0.0}


#: The files of a local model folder that decide what a run trains (a model card changes nothing).
_MODEL_FILES = ("*.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "added_tokens.json", "spiece.model", "*.model", "vocab.*", "merges.txt")


def model_fingerprint(model: str) -> str:
    """A short hash of a local model folder's weights, config and tokenizer files (a Hub id is itself), by
    name and content, never by location, so a moved checkout still finds its runs."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return model
    paths = sorted({path for pattern in _MODEL_FILES for path in folder.glob(pattern) if path.is_file()})
    return results.digest(chunk for path in paths for chunk in _named_file_chunks(path))


def _named_file_chunks(path: Path):
    """A file's name (then a zero byte) and its content in 1 MiB chunks."""
    yield path.name.encode() + b"\x00"
    with open(path, "rb") as handle:
        yield from iter(lambda: handle.read(1 << 20), b"")


def weights_fingerprint(model) -> str:
    """A SHA-256 over every parameter and buffer: equal fingerprints mean identical weights."""
    return results.digest((chunk for name, tensor in sorted(model.state_dict().items()) for chunk in (
        name, tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())), length=None)


def folder_size_mb(folder: str | Path) -> float:
    """Size on disk of the ``*.safetensors`` files in ``folder``, in MB."""
    return sum(p.stat().st_size for p in Path(folder).glob("*.safetensors")) / 1e6


def warm_cache(profile: Profile) -> list[str]:
    """Load the profile's model, tokenizer, target task and probe tasks once, so later runs work offline."""
    load_tokenizer(profile)
    load_model(profile)
    splits = {f"target {profile.target}": data.load_target(profile)} | {
        f"probe {p} from {data.probe_source(p, profile)}": data.load_probe(p, profile) for p in data.PROBES}
    sizes = {what: ", ".join(f"{s} {len(d):,}" for s, d in parts.items()) for what, parts in splits.items()}
    return [f"model and tokenizer {profile.model}"] + [f"{what} ({size})" for what, size in sizes.items()]


if __name__ == "__main__":  # python -m utils.modeling: cache everything the active profile needs
    import datasets

    for line in warm_cache(get_profile()):
        print("cached:", line)
    print(f"Hub cache: {huggingface_hub.constants.HF_HUB_CACHE}; data sets cache: {datasets.config.HF_DATASETS_CACHE}. "
          f"To work offline elsewhere, copy {huggingface_hub.constants.HF_HOME} to the same place there.")
