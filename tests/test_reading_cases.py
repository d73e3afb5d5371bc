"""The reading table is well formed: enough cases, and in every shape; known countries and target kinds.
No model needed, so this stays in the fast tier (the reader's scores on the table are slow)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from monitor.analysis.gazetteer import default_gazetteer
from tests.reading_cases import Case, load_cases

MIN_CASES = 300
MIN_CASES_PER_SHAPE = 12
KINDS = frozenset(
    {"election", "campaign", "candidate", "party", "parliament", "voters", "systems", "media", "companies"}
)


def _case_ids(cases: Sequence[Case]) -> list[str]:
    return [case.id for case in cases]


def test_table_is_well_formed() -> None:
    cases = load_cases()
    countries = set(default_gazetteer().countries())
    ids = _case_ids(cases)
    assert len(cases) >= MIN_CASES
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    per_shape = Counter(case.shape for case in cases)
    assert all(n >= MIN_CASES_PER_SHAPE for n in per_shape.values()), per_shape
    for case in cases:
        assert case.text.strip(), case.id
        assert case.accused <= countries and case.not_accused <= countries, case.id
        assert not case.accused & case.not_accused, case.id
        for target in case.targets:
            assert target.kind in KINDS, (case.id, target)
            assert not target.whose or target.whose in countries, (case.id, target)
