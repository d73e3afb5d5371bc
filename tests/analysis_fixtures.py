"""The embedding model and the seed corpus, loaded once per test session for the analysis tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from monitor.analysis.detector import Detector, seed_knowledge
from monitor.analysis.embedder import Embedder
from monitor.analysis.knowledge import Fact
from monitor.analysis.seeds import SeedCorpus, SeedDocument, load_seed_documents
from monitor.config import AnalysisSettings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"
SHARED_EVAL = ROOT.parent / "shared" / "eval"
# The exported model (openvino, onnx), built once and kept between runs: the export is keyed by the
# model files and the export options. tests/test_embedder_backends.py exports afresh into a
# directory of its own, so the export itself is always tested.
MODEL_CACHE = ROOT / "data" / "test-cache"


def eval_file(name: str) -> Path:
    """The shared evaluation file when present, else the copy kept with the tests."""
    shared = SHARED_EVAL / name
    return shared if shared.exists() else DATA / name


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    settings = AnalysisSettings()
    return Embedder(
        settings.model,
        batch_size=settings.batch_size,
        device=settings.device,
        backend=settings.backend,
        cache_dir=MODEL_CACHE,
    )


@lru_cache(maxsize=1)
def seed_documents() -> tuple[SeedDocument, ...]:
    return tuple(load_seed_documents(SEEDS))


@lru_cache(maxsize=1)
def detector() -> Detector:
    corpus = SeedCorpus.build(list(seed_documents()), embedder(), None)
    return Detector(embedder(), corpus, AnalysisSettings())


@lru_cache(maxsize=1)
def seed_facts() -> tuple[Fact, ...]:
    return tuple(seed_knowledge(detector(), list(seed_documents())))
