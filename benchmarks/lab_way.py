"""THE REFERENCE LABS' WAYS -- reproduced only to be measured against. Do not use them in the course.

What the reference labs (DeepLearning.AI/AWS "Generative AI with LLMs", Lab 2, and the notebooks derived
from it; see shared/REFERENCES.md, section 2) do, and what each costs:

* **Tokenizing for training**: every prompt *and every label* padded to 512 tokens
  (``padding="max_length"``), and the pad tokens left in the labels, so the loss also trains the model to
  predict padding and the decoder runs over 512 positions for a summary of a few dozen tokens.
* **Training**: a plain ``Trainer`` over those fixed-length tensors, in random order.
* **Generation**: a Python loop, one example at a time, each prompt padded to 512 tokens.

The course's ways are in ``utils.training`` (dynamic padding, ``-100`` labels, length grouping) and
``utils.evaluation.generate`` (batched, length-sorted). ``benchmarks/`` times both side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

LAB_MAX_LENGTH = 512  # T5's model_max_length; the labs pad everything to it


def lab_tokenize(dataset, tokenizer, max_length: int = LAB_MAX_LENGTH):
    """The labs' tokenize function: prompts and labels padded to ``max_length``; pad ids stay in the labels.

    (The course masks label padding with -100 so the loss ignores it; the labs do not.)
    """

    def encode(batch):
        inputs = tokenizer(batch["source"], padding="max_length", max_length=max_length, truncation=True)
        labels = tokenizer(text_target=batch["target"], padding="max_length", max_length=max_length,
                           truncation=True)
        return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
                "labels": labels["input_ids"]}

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc="Lab-way tokenizing")


def lab_generate(model, tokenizer, prompts: Sequence[str], gen_config,
                 max_length: int = LAB_MAX_LENGTH) -> list[str]:
    """The labs' generation loop: one prompt at a time, padded to ``max_length`` tokens.

    The attention mask is passed, so the outputs equal the course's batched generation: only the cost
    differs.
    """
    outputs = []
    model.eval()
    with torch.inference_mode():
        for prompt in prompts:
            batch = tokenizer(prompt, padding="max_length", max_length=max_length, truncation=True,
                              return_tensors="pt").to(model.device)
            generated = model.generate(**batch, generation_config=gen_config)
            outputs.append(tokenizer.decode(generated[0], skip_special_tokens=True).strip())
    return outputs
