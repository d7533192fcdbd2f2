"""The models the benchmarks run on: the course's tiny model, and FLAN-T5-small's shape with random weights.

Speed depends on a model's shape, not on what its weights learned, so a randomly initialised model with
FLAN-T5-small's configuration (77M parameters) tells how the speedups hold at a realistic size without
downloading anything.
"""

from __future__ import annotations

import torch
from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

#: google/flan-t5-small's config.json (T5 v1.1 "small": gated-GELU, untied embeddings), written out.
FLAN_T5_SMALL = dict(
    vocab_size=32128,
    d_model=512,
    d_kv=64,
    d_ff=1024,
    num_layers=8,
    num_decoder_layers=8,
    num_heads=6,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.1,
    layer_norm_epsilon=1e-6,
    initializer_factor=1.0,
    feed_forward_proj="gated-gelu",
    is_encoder_decoder=True,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)  # and tie_word_embeddings=False: its output layer is its own matrix, not the input embeddings
FLAN_T5_SMALL_PARAMETERS = 76_961_152  # as published for google/flan-t5-small ("77M")
#: google/flan-t5-base's shape (its config.json): the reference lab's model, 248M parameters.
FLAN_T5_BASE = {**FLAN_T5_SMALL, "d_model": 768, "d_ff": 2048, "num_layers": 12, "num_decoder_layers": 12,
                "num_heads": 12}


def flan_t5_small_random(tokenizer, seed: int = 0, shape: dict = FLAN_T5_SMALL) -> T5ForConditionalGeneration:
    """A FLAN-T5-small-shaped T5 (or ``shape``, e.g. :data:`FLAN_T5_BASE`) with random weights, usable with
    ``tokenizer`` (pad 0, eos 1)."""
    if tokenizer.pad_token_id != 0 or tokenizer.eos_token_id != 1:
        raise ValueError("flan_t5_small_random needs a T5-style tokenizer (pad id 0, eos id 1), such as the "
                         "course's tiny model's.")
    config = T5Config(**{**shape, "vocab_size": max(shape["vocab_size"], len(tokenizer))})
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    # transformers 5 builds T5 with the output layer tied to the embeddings; FLAN-T5 has its own.
    model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    model.config.tie_word_embeddings = False
    getattr(model, "all_tied_weights_keys", {}).pop("lm_head.weight", None)
    model.generation_config = GenerationConfig(decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return model.eval()
