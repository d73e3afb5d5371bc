"""The knowledge base derived from seeds/ with the news extractor, against the analyst's reference."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from monitor.analysis.seeds import SeedError, clean_seed_text, load_seed_documents
from monitor.analysis.text import fold
from tests.analysis_fixtures import embedder, eval_file, seed_documents, seed_facts

pytestmark = pytest.mark.slow


def _reference() -> dict:
    return yaml.safe_load(eval_file("seed_kb.yaml").read_text(encoding="utf-8"))


def test_seed_documents_are_cleaned() -> None:
    documents = {d.name: d for d in seed_documents()}
    assert len(documents) == 5
    first = documents["000_15f090fb8f4a8b8a.txt"]
    assert not first.text.startswith("date") and first.published is not None
    assert "image Photo" not in documents["003_1be9eda0902f9254.txt"].text
    sputnik = documents["004_4f0e309be861a4ee.txt"]
    assert "Published at" not in sputnik.text and "Original:" not in sputnik.text and not sputnik.text.startswith("#")
    assert sputnik.published is not None and sputnik.published.year == 2019


def test_markdown_and_date_headers() -> None:
    text, published = clean_seed_text(" date 2021-02-03 Body starts here.")
    assert text == "Body starts here." and published is not None and published.isoformat() == "2021-02-03"


def test_missing_or_empty_seed_folder_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SeedError, match="does not exist"):
        load_seed_documents(tmp_path / "nope")
    with pytest.raises(SeedError, match="no .txt"):
        load_seed_documents(tmp_path)


def test_html_seed_is_read_as_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.html").write_text("<html><script>x()</script><p>Hackers hit the <b>ministry</b>.</p></html>")
    [document] = load_seed_documents(tmp_path)
    assert "Hackers hit the ministry." in document.text and "x()" not in document.text


def test_alleged_countries_match_the_reference() -> None:
    reference = _reference()
    countries = {f.value for f in seed_facts() if f.kind == "country"}
    assert {c["name"] for c in reference["countries"]} <= countries
    assert not countries & set(reference["mentioned_only"])


def test_state_denials_match_the_reference() -> None:
    reference = _reference()
    deniers = {f.value for f in seed_facts() if f.kind == "denial"}
    states = {d["by"] for d in reference["denials"] if "(" not in d["by"]}
    assert states <= deniers


def test_targets_cover_the_reference_by_meaning() -> None:
    targets = [f.value for f in seed_facts() if f.kind == "target"]
    assert targets
    reference = _reference()["targets"]
    found = embedder().embed(targets)
    covered = 0
    for item in reference:
        wordings = [item["name"], *item.get("aliases", [])]
        vectors = embedder().embed(wordings)
        best = float(np.max(vectors @ found.T))
        overlap = any(
            set(fold(w).split()) & set(fold(t).split()) - {"the", "of", "and", "us"} for w in wordings for t in targets
        )
        covered += best >= 0.6 or (overlap and best >= 0.45)
    assert covered / len(reference) >= 0.8, f"{covered}/{len(reference)} reference targets covered"
