"""The exported backends (openvino, onnx) against the torch reference, on the real bundled model:
same vectors (cosine), exported once and reused from the cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis import embedder as embedder_module
from monitor.analysis import model_export
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
def openvino_embedder(cache_dir: Path) -> Embedder:
    return Embedder(MODEL, backend="openvino", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def onnx_embedder(cache_dir: Path) -> Embedder:
    return Embedder(MODEL, backend="onnx", cache_dir=cache_dir)


def test_the_export_runs_in_a_child_so_pytorch_never_loads_in_the_service(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from monitor.analysis.embedder import Embedder\n"
        f"embedder = Embedder({MODEL!r}, backend='openvino', cache_dir={str(tmp_path)!r})\n"
        "vector = embedder.embed(['The Kremlin denied any involvement.'])[0]\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'norm': float((vector ** 2).sum())}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] is False
    assert abs(report["norm"] - 1.0) < 1e-4
    assert [f.name for f in tmp_path.glob("models/*/model-*.onnx")] == ["model-fp32.onnx"]


def test_openvino_vectors_agree_with_torch(openvino_embedder: Embedder, torch_embedder: Embedder) -> None:
    assert torch_embedder.backend == "torch"
    cosine = cosine_with_reference(openvino_embedder, torch_embedder)
    # bfloat16 products with float32 sums (where the CPU has them) stay this close; float32 closer.
    assert cosine.min() >= 0.999, cosine
    # The precision it runs in is part of the name the seed-vector cache is keyed by.
    assert openvino_embedder.model_name in {f"{MODEL}#openvino-bf16", f"{MODEL}#openvino-fp32"}


def test_openvino_in_float32_when_asked(cache_dir: Path, torch_embedder: Embedder) -> None:
    exact = Embedder(MODEL, backend="openvino", cache_dir=cache_dir, openvino_precision="fp32")
    assert exact.model_name == f"{MODEL}#openvino-fp32"
    cosine = (exact.embed(TEXTS) * torch_embedder.embed(TEXTS)).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    # The reference: the analysis fixtures run the default backend, which is not torch.
    return Embedder(MODEL, backend="torch")


def cosine_with_reference(fast: Embedder, reference: Embedder) -> np.ndarray:
    """Each text's cosine between the two backends' vectors, after checking their shape and norm."""
    vectors, expected = fast.embed(TEXTS), reference.embed(TEXTS)
    assert vectors.shape == expected.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    return (vectors * expected).sum(axis=1)


def test_onnx_vectors_agree_with_torch(onnx_embedder: Embedder, torch_embedder: Embedder) -> None:
    cosine = cosine_with_reference(onnx_embedder, torch_embedder)
    # int8 activations are quantised per batch: a near-empty text (CLS + SEP only) moves most.
    assert cosine.min() >= 0.98, cosine
    assert cosine.mean() >= 0.99, cosine
    # What the detector relies on: the ranking of similarities is kept.
    fast = onnx_embedder.embed(TEXTS)
    assert np.argmax(fast[:4] @ fast[0]) == 0 and (fast[1] @ fast[0]) > (fast[3] @ fast[0])


def test_the_exact_onnx_export_matches_torch(cache_dir: Path, torch_embedder: Embedder) -> None:
    exact = Embedder(MODEL, backend="onnx", cache_dir=cache_dir, onnx_precision="fp32")
    cosine = (exact.embed(TEXTS) * torch_embedder.embed(TEXTS)).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine


def test_second_construction_reuses_the_export(
    cache_dir: Path, onnx_embedder: Embedder, openvino_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted(cache_dir.glob("models/*/model-*.onnx"))
    assert [f.name for f in files] == ["model-fp32.onnx", "model-int8.onnx"]
    before = {f: f.stat().st_mtime_ns for f in files}

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(model_export, "_in_child_process", no_export)
    again = Embedder(MODEL, backend="onnx", cache_dir=cache_dir)
    Embedder(MODEL, backend="openvino", cache_dir=cache_dir)
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


def test_openvino_without_the_package_refuses_with_the_setting_named(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in: the package is installed here, so its absence is simulated (None in sys.modules
    # makes the import fail as it does where openvino is missing).
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(EmbedderError, match=r"analysis\.backend: openvino needs the openvino package"):
        Embedder(MODEL, backend="openvino", cache_dir=cache_dir)


def test_a_failed_export_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}', encoding="utf-8")
    (broken / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(EmbedderError, match=r"analysis\.backend: exporting the model failed: .+"):
        Embedder(str(broken), backend="openvino", cache_dir=tmp_path / "cache")


def test_the_backend_setting_is_validated(tmp_path: Path) -> None:
    assert AnalysisSettings().backend == "openvino"
    assert AnalysisSettings(backend="onnx").backend == "onnx"
    config = tmp_path / "monitor.yaml"
    config.write_text("analysis:\n  backend: tensorflow\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"analysis\.backend"):
        load_settings(config, environ={})


def test_openvino_calls_from_two_threads_each_get_their_own_vectors(cache_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    embedder = Embedder(MODEL, backend="openvino", cache_dir=cache_dir)
    groups = [[f"{text} ({n})" for text in TEXTS[:4] * 20] for n in range(4)]
    expected = [embedder._encoder.encode(group, 32) for group in groups]
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda group: embedder._encoder.encode(group, 32), groups))
    for want, have in zip(expected, got, strict=True):
        assert np.allclose(want, have, atol=1e-5)


def test_batches_are_cut_where_padding_would_cost_more_than_a_call() -> None:
    cut = embedder_module.padding_aware_batches
    # One long sentence among short ones runs alone, rather than padding 31 others to its length.
    assert cut([240] + [30] * 31, 32, 32) == [0, 1, 32]
    # Texts of one length fill batches up to the limit.
    assert cut([30] * 64, 32, 32) == [0, 32, 64]
    # A small step in length is not worth a call; a large one is.
    assert cut([50, 49, 48, 10, 9, 8, 7], 32, 32) == [0, 3, 7]
    assert cut([12, 11, 10, 9], 32, 32) == [0, 4]
    assert cut([], 32, 32) == [0]


def test_the_torch_path_batches_by_tokens_and_keeps_the_order_of_the_texts(torch_embedder: Embedder) -> None:
    texts = [*TEXTS, "A short one.", "Another sentence of middling length about an election and its count."]
    ours = torch_embedder._encoder.encode(texts, 32)
    # sentence-transformers' own encode: one call, batched by characters.
    theirs = torch_embedder._encoder._encode(texts, 32)  # type: ignore[union-attr]
    assert ours.shape == theirs.shape == (len(texts), 384)
    assert (ours * theirs).sum(axis=1).min() >= 0.99999
