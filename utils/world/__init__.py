"""The offline world's builders: build tools, not lesson helpers.

* ``synth`` writes the synthetic corpus under ``data/`` (``make data``: the DialogSum-style target task, the
  probe tasks and the held-in chats) and refreshes the data card. Its words are data: ``phrasing.json``
  holds the slot pools and phrasing tables (its ``"_about"`` key documents each); the scenes stay code.
* ``tiny_flan`` builds the tiny FLAN-T5 under ``data/models/`` (``make model``): tokenizer, span-corruption
  pre-training, FLAN-style instruction tuning, its evaluation and model card.

The lessons never import them (the bonus notebook shows how the model was built). They import the rest of
``utils``; nothing in ``utils`` imports them.
"""
