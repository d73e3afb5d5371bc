"""The seed corpus's vectors are read back from cache_dir rather than computed again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis.seeds import SeedCorpus, SeedDocument
from tests.analysis_fixtures import embedder

pytestmark = pytest.mark.slow  # the real model embeds the corpus once

SEEDS = [
    SeedDocument("ransomware.txt", "Investigators linked the ransomware attack on the hospital to a criminal group."),
    SeedDocument("sanctions.txt", "The shipping company was accused of evading sanctions through front companies."),
]


def _rewrite_cache(path: Path, change: dict[str, object]) -> None:
    with np.load(path, allow_pickle=False) as data:
        stored = {"vectors": data["vectors"], "sentences": data["sentences"]}
    np.savez(path, **(stored | change))


def test_a_second_build_reads_the_vectors_from_the_cache(tmp_path: Path) -> None:
    first = SeedCorpus.build(SEEDS, embedder(), tmp_path)
    [cache] = list(tmp_path.glob("seeds-*.npz"))
    # Vectors the model would never produce: only a build that reads the file can return them.
    marked = np.full_like(first.vectors, 0.5)
    _rewrite_cache(cache, {"vectors": marked})
    second = SeedCorpus.build(SEEDS, embedder(), tmp_path)
    assert np.array_equal(second.vectors, marked)
    assert not np.allclose(second.vectors, first.vectors)


def test_a_cache_for_other_sentences_is_not_trusted(tmp_path: Path) -> None:
    first = SeedCorpus.build(SEEDS, embedder(), tmp_path)
    [cache] = list(tmp_path.glob("seeds-*.npz"))
    foreign = np.array(json.dumps(["another sentence", "and another one"]))
    _rewrite_cache(cache, {"vectors": np.full_like(first.vectors, 0.5), "sentences": foreign})
    again = SeedCorpus.build(SEEDS, embedder(), tmp_path)
    assert np.allclose(again.vectors, first.vectors)
