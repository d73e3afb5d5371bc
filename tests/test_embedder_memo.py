"""The embedder's memo is bounded in bytes as well as in texts: its keys are the texts themselves,
and feed articles can be long (up to poll.max_entry_chars each). The real model, real texts."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from monitor.analysis import embedder as embedder_module

pytestmark = pytest.mark.slow


def test_long_texts_cannot_grow_the_memo_past_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.analysis_fixtures import embedder

    model = embedder()
    monkeypatch.setattr(embedder_module, "MEMO_BYTES", 2_000_000, raising=False)
    tag = uuid.uuid4().hex
    # Ten articles of 400,000 characters: 4 MB of keys, far under the 50,000-text bound.
    texts = [f"{tag} article {n}: " + "Officials said the vote was targeted. " * 10_000 for n in range(10)]
    for text in texts:
        vector = model.embed([text])
        assert vector.shape == (1, model.dimension)
        held = sum(len(key) for key in model._cache)
        assert held <= 2_000_000, held  # before: every text kept, 4 MB
    # What is kept still answers, and what was dropped is encoded again to the same vector.
    again = model.embed([texts[0], texts[-1]])
    assert np.allclose(again[0], model.embed([texts[0]])[0])


def test_a_single_call_larger_than_the_memo_is_answered_and_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.analysis_fixtures import embedder

    model = embedder()
    monkeypatch.setattr(embedder_module, "MEMO_BYTES", 100_000, raising=False)
    huge = uuid.uuid4().hex + " " + "A report on the campaign. " * 20_000
    assert model.embed([huge, "a short one " + uuid.uuid4().hex]).shape == (2, model.dimension)
    assert huge not in model._cache
