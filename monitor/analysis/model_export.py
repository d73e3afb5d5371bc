"""The embedding model exported once to ONNX, in a child process, and cached on disk under
``cache_dir/models/<model>-<fingerprint>/`` for every later start (the openvino and onnx backends)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from monitor.config import ConfigError

log = logging.getLogger(__name__)

# Bump when the export (graph, opset, quantisation options) changes: older files are not reused.
_EXPORT_VERSION = 2
_OPSET = 17


class EmbedderError(ConfigError):
    """The embedder cannot be built as configured; the message names the setting and the problem."""


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
            f"analysis.backend: onnx and openvino export from a local model directory; {model_path!r} is not one"
        )
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", path.resolve().name if path.name != "model" else path.resolve().parent.name)
    return Path(cache_dir or default_cache_dir()) / "models" / f"{slug}-{model_fingerprint(path)}"


def exported_onnx_model(
    model_path: str, cache_dir: Path | str | None, *, precision: Literal["int8", "fp32"] = "int8"
) -> Path:
    """The ONNX file for MODEL_PATH at PRECISION, exported on first use and reused afterwards."""
    directory = export_dir(model_path, cache_dir)
    target = directory / f"model-{precision}.onnx"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(directory / ".lock"):
        if target.exists():  # another process exported it while this one waited
            return target
        started = time.perf_counter()
        _in_child_process(_export, model_path, str(directory), precision)
        log.info(
            "model export", extra={"path": str(target), "duration_ms": round((time.perf_counter() - started) * 1000)}
        )
    return target


def _in_child_process(function: Callable[..., None], *args: str) -> None:
    """Run FUNCTION in a fresh interpreter: the PyTorch the export loads is released with it.

    A plain ``python -c`` rather than multiprocessing: spawn would re-import the caller's main
    script, which may itself build an embedder and wait on the export lock this process holds.
    """
    import subprocess
    import sys

    call = f"from {function.__module__} import {function.__name__} as f; import sys; f(*sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", call, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise EmbedderError(f"analysis.backend: exporting the model failed: {reason}")


def _export(model_path: str, directory: str, precision: str) -> None:
    import warnings

    # A child of its own: ONNX Runtime's quantiser and the tracer report at INFO and warn about
    # steps that do not apply here; the parent logs the outcome.
    logging.getLogger().setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    fp32 = Path(directory) / "model-fp32.onnx"
    if not fp32.exists():
        _export_fp32(Path(model_path), fp32)
    if precision == "int8":
        _quantize_int8(fp32, Path(directory) / "model-int8.onnx")


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
