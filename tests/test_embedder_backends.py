"""The ONNX backend against the torch reference, on the real bundled model: same vectors (cosine),
exported once and reused from the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.analysis import embedder as embedder_module
from monitor.analysis.embedder import Embedder, EmbedderError
from monitor.config import AnalysisSettings, ConfigError, load_settings

pytestmark = pytest.mark.slow

MODEL = AnalysisSettings().model
TEXTS = [
    "Russia interfered in the 2016 election through hacking and social media.",
    "Officials said Iranian hackers broke into the campaign's email accounts.",
    "The Kremlin denied any involvement in the operation.",
    "Local bakery wins a prize for its sourdough bread.",
    "  Whitespace around a sentence is ignored, as sentence-transformers does.  ",
    "",
    "word " * 400,  # longer than the model's 256 tokens: truncated the same way
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedder-cache")


@pytest.fixture(scope="module")
def onnx_embedder(cache_dir: Path) -> Embedder:
    return Embedder(MODEL, backend="onnx", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    from tests.analysis_fixtures import embedder

    return embedder()


def test_onnx_vectors_agree_with_torch(onnx_embedder: Embedder, torch_embedder: Embedder) -> None:
    fast = onnx_embedder.embed(TEXTS)
    reference = torch_embedder.embed(TEXTS)
    assert fast.shape == reference.shape == (len(TEXTS), 384)
    assert fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    cosine = (fast * reference).sum(axis=1)
    # int8 activations are quantised per batch: a near-empty text (CLS + SEP only) moves most.
    assert cosine.min() >= 0.98, cosine
    assert cosine.mean() >= 0.99, cosine
    # What the detector relies on: the ranking of similarities is kept.
    assert np.argmax(fast[:4] @ fast[0]) == 0 and (fast[1] @ fast[0]) > (fast[3] @ fast[0])


def test_the_exact_onnx_export_matches_torch(cache_dir: Path, torch_embedder: Embedder) -> None:
    exact = Embedder(MODEL, backend="onnx", cache_dir=cache_dir, onnx_precision="fp32")
    cosine = (exact.embed(TEXTS) * torch_embedder.embed(TEXTS)).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine


def test_second_construction_reuses_the_export(
    cache_dir: Path, onnx_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted(cache_dir.glob("models/*/model-*.onnx"))
    assert [f.name for f in files] == ["model-fp32.onnx", "model-int8.onnx"]
    before = {f: f.stat().st_mtime_ns for f in files}

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(embedder_module, "_export_fp32", no_export)
    monkeypatch.setattr(embedder_module, "_quantize_int8", no_export)
    again = Embedder(MODEL, backend="onnx", cache_dir=cache_dir)
    assert {f: f.stat().st_mtime_ns for f in files} == before
    # The same file, so the same vectors (up to the per-batch activation scale of int8).
    cosine = (again.embed(TEXTS[:4]) * onnx_embedder.embed(TEXTS[:4])).sum(axis=1)
    assert cosine.min() >= 0.995, cosine


def test_backends_keep_their_cached_vectors_apart(onnx_embedder: Embedder, torch_embedder: Embedder) -> None:
    # The seed corpus cache is keyed by model_name: an onnx start must not read torch vectors.
    assert onnx_embedder.model_name != torch_embedder.model_name
    assert onnx_embedder.model_name.startswith(MODEL)


def test_on_batch_reports_the_seconds_of_each_model_call(onnx_embedder: Embedder) -> None:
    seen: list[float] = []
    onnx_embedder.on_batch = seen.append
    try:
        onnx_embedder.embed(["a text never embedded before, to reach the model"])
        onnx_embedder.embed(["a text never embedded before, to reach the model"])  # memoised: no call
    finally:
        onnx_embedder.on_batch = None
    assert len(seen) == 1 and 0 < seen[0] < 60


def test_openvino_without_the_package_refuses_with_the_setting_named() -> None:
    with pytest.raises(EmbedderError, match=r"analysis\.backend: openvino"):
        Embedder(MODEL, backend="openvino")


def test_the_backend_setting_is_validated(tmp_path: Path) -> None:
    assert AnalysisSettings().backend == "torch"
    assert AnalysisSettings(backend="onnx").backend == "onnx"
    config = tmp_path / "monitor.yaml"
    config.write_text("analysis:\n  backend: tensorflow\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"analysis\.backend"):
        load_settings(config, environ={})
