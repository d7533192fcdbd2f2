"""Fingerprints: the one hash behind every cache key (runs, scores, models, templates, data, benchmarks).

Each fingerprint is a SHA-256 over a sequence of text or byte chunks, cut to a short hex prefix. The functions
that know what to feed it stay with their objects (``modeling.weights_fingerprint``,
``training.data_fingerprint``, ``templates.fingerprint``...); the hashing itself happens only here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable


def digest(chunks: Iterable[str | bytes], length: int | None = 16) -> str:
    """The SHA-256 of ``chunks`` fed in order (text as UTF-8) as hex, its first ``length`` digits (None: all)."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk.encode() if isinstance(chunk, str) else chunk)
    return hasher.hexdigest()[:length]


def of_json(obj, length: int | None = 16) -> str:
    """:func:`digest` of ``obj`` as JSON with sorted keys (equal objects, equal fingerprints)."""
    return digest([json.dumps(obj, sort_keys=True)], length)
