"""Embedding throughput against this machine's fp32 matmul limit, and backends against torch.

    HF_HUB_OFFLINE=1 python bench/embed.py        # torch, sentence-transformers, openvino, onnx (int8), onnx fp32
    HF_HUB_OFFLINE=1 python bench/embed.py --rounds 7 --backends torch,openvino,openvino-fp32

"torch" is the monitor's torch backend: sentence-transformers' model, called once per batch of
texts cut by tokens (monitor.analysis.embedder.padding_aware_batches). "sentence-transformers" is
the same model run by SentenceTransformer.encode alone, batched by characters: what a user of that
library gets, shown as a second baseline.

The machine is shared and noisy, so every figure that matters is a ratio measured in the same
round: P (GFLOP/s of torch fp32 matmuls at the model's shapes, 2 threads) is re-measured in each
round next to the model runs, and backends are compared with torch round by round (median of the
per-round ratios).

Work per token comes from the model's config.json: 2 FLOPs per weight of the encoder's linear
layers, plus attention (QK^T and AV: 4 * tokens * hidden per layer). "Useful" counts the real
tokens of each text; "done" counts the padded batch the model actually ran.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.analysis.embedder import CALL_TOKENS, Embedder, padding_aware_batches, resolve_model
from monitor.analysis.text import split_sentences
from monitor.config import AnalysisSettings

DEV_STREAM = ROOT.parent / "shared" / "eval" / "dev_stream.jsonl"
MAX_TOKENS = 256


def model_shape(model_dir: Path) -> dict[str, int]:
    config = json.loads((model_dir / "config.json").read_text())
    return {
        "layers": config["num_hidden_layers"],
        "hidden": config["hidden_size"],
        "intermediate": config["intermediate_size"],
        "heads": config["num_attention_heads"],
    }


def flops_per_sequence(n: int, shape: dict[str, int]) -> float:
    """Forward FLOPs of one sequence of N tokens (multiply-add = 2)."""
    h, i, layers = shape["hidden"], shape["intermediate"], shape["layers"]
    linear = layers * (4 * h * h + 2 * h * i)  # Q, K, V, O and the two feed-forward layers
    attention = layers * 4 * n * h  # per token: QK^T over n keys and AV over n values
    return n * (2 * linear + attention)


def matmul_rate(shape: dict[str, int], tokens: int = 32 * 48, repeats: int = 40) -> float:
    """GFLOP/s of torch fp32 matmuls with the model's shapes, median per shape, FLOP-weighted."""
    import torch

    h, i = shape["hidden"], shape["intermediate"]
    total_flops = total_time = 0.0
    for k, n in ((h, h), (h, i), (i, h)):
        a, b = torch.randn(tokens, k), torch.randn(k, n)
        torch.mm(a, b)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - start)
        total_flops += 2.0 * tokens * k * n
        total_time += statistics.median(times)
    return total_flops / total_time / 1e9


def text_sets(tokenizer: object, limit_articles: int) -> dict[str, list[str]]:
    rows = [json.loads(line) for line in DEV_STREAM.read_text().splitlines() if line.strip()][:limit_articles]
    sentences, titles, leads, chunks = [], [], [], []
    for row in rows:
        parts = split_sentences(row["text"])
        sentences += parts
        titles.append(row["title"])
        leads.append(" ".join(parts[:4]))
        ids = tokenizer.encode(row["text"], add_special_tokens=False).ids  # type: ignore[attr-defined]
        for start in range(0, len(ids), MAX_TOKENS - 2):
            chunks.append(tokenizer.decode(ids[start : start + MAX_TOKENS - 2]))  # type: ignore[attr-defined]
    # What the detector embeds per article: its sentences, its lead, its title.
    return {
        "detector mix": sentences + leads + titles,
        "titles": titles,
        "leads": leads,
        "256-token chunks": chunks,
    }


def padding(lengths: list[int], order: list[int], batch: int) -> int:
    """Tokens the model runs when texts go in ORDER, padded to the longest of each batch."""
    done = 0
    for start in range(0, len(order), batch):
        chosen = [lengths[i] for i in order[start : start + batch]]
        done += max(chosen) * len(chosen)
    return done


def encode(backend: str, embedder: Embedder) -> Any:
    """The model call past the embedder's memo; "sentence-transformers" is the torch backend's model
    run by SentenceTransformer.encode alone, as a user of that library would."""
    return embedder._encoder._encode if backend == "sentence-transformers" else embedder._encoder.encode  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--backends",
        default="torch,sentence-transformers,openvino,onnx,onnx-fp32",
        help="torch, sentence-transformers (its own encode, batched by characters), openvino (bf16 "
        "where the CPU has it), openvino-fp32, onnx (int8), onnx-fp32",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--articles", type=int, default=54, help="dev-stream articles used")
    parser.add_argument("--batch-size", type=int, default=AnalysisSettings().batch_size)
    parser.add_argument("--cache-dir", default=str(ROOT / "data" / "cache"))
    args = parser.parse_args()

    import torch
    from tokenizers import Tokenizer

    torch.set_num_threads(2)
    model = AnalysisSettings().model
    model_dir = Path(resolve_model(model))
    shape = model_shape(model_dir)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()  # tokenizer.json pads to 128 by default
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    sets = text_sets(tokenizer, args.articles)

    per_token = flops_per_sequence(1, shape) - shape["layers"] * 4 * shape["hidden"]
    print(f"command: {' '.join(['python', *sys.argv])}")
    print(
        f"model {model}: {shape}; linear FLOPs/token {per_token / 1e6:.1f} M "
        f"(+ attention {shape['layers'] * 4 * shape['hidden'] / 1e3:.1f} k x sequence length)"
    )
    stats: dict[str, dict[str, float]] = {}
    for name, texts in sets.items():
        lengths = [len(e.ids) for e in tokenizer.encode_batch([t.strip() for t in texts])]
        useful = sum(flops_per_sequence(n, shape) for n in lengths)
        by_chars = sorted(range(len(texts)), key=lambda k: -len(texts[k].strip()))  # sentence-transformers
        by_tokens = sorted(range(len(texts)), key=lambda k: -lengths[k])
        real = sum(lengths)
        st_done = padding(lengths, by_chars, args.batch_size)
        fixed_done = padding(lengths, by_tokens, args.batch_size)
        unsorted_done = padding(lengths, list(range(len(texts))), args.batch_size)
        # The exported backends cut the sorted texts where padding would cost more than a call.
        ordered = [lengths[k] for k in by_tokens]
        cuts = padding_aware_batches(ordered, args.batch_size, CALL_TOKENS)
        aware_done = sum(ordered[a] * (b - a) for a, b in itertools.pairwise(cuts))
        stats[name] = {"useful": useful, "tokens": real}
        print(
            f"  {name:17s} {len(texts):5d} texts, {real / len(texts):6.1f} tokens/text; padding waste: "
            f"unsorted {1 - real / unsorted_done:5.1%}, by characters (sentence-transformers) "
            f"{1 - real / st_done:5.1%}, by tokens {1 - real / fixed_done:5.1%}, by tokens in "
            f"padding-aware batches (torch, openvino, onnx on a CPU) {1 - real / aware_done:5.1%} in "
            f"{len(cuts) - 1} calls "
            f"(fixed: {-(-len(texts) // args.batch_size)})"
        )

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    embedders: dict[str, Embedder] = {}
    for backend in backends:
        started = time.perf_counter()
        if backend == "onnx-fp32":
            embedders[backend] = Embedder(
                model, batch_size=args.batch_size, backend="onnx", cache_dir=args.cache_dir, onnx_precision="fp32"
            )
        elif backend == "openvino-fp32":
            embedders[backend] = Embedder(
                model,
                batch_size=args.batch_size,
                backend="openvino",
                cache_dir=args.cache_dir,
                openvino_precision="fp32",
            )
        elif backend == "sentence-transformers":
            embedders[backend] = embedders.get("torch") or Embedder(model, batch_size=args.batch_size, backend="torch")
        else:
            embedders[backend] = Embedder(model, batch_size=args.batch_size, backend=backend, cache_dir=args.cache_dir)  # type: ignore[arg-type]
        print(f"loaded {backend} ({embedders[backend].model_name}) in {time.perf_counter() - started:.1f} s")

    # Agreement with torch, on every text set.
    if "torch" in embedders:
        reference = {name: embedders["torch"]._encoder.encode(texts, args.batch_size) for name, texts in sets.items()}
        for backend, embedder in embedders.items():
            if backend in ("torch", "sentence-transformers"):
                continue
            cosines = np.concatenate(
                [
                    (embedder._encoder.encode(texts, args.batch_size) * reference[name]).sum(axis=1)
                    for name, texts in sets.items()
                ]
            )
            print(
                f"agreement {backend} vs torch: cosine min {cosines.min():.4f}, p1 {np.percentile(cosines, 1):.4f}, "
                f"mean {cosines.mean():.4f} over {len(cosines)} texts"
            )

    rates: list[float] = []
    seconds: dict[tuple[str, str], list[float]] = {}
    fractions: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        p = matmul_rate(shape)
        rates.append(p)
        for name, texts in sets.items():
            for backend, embedder in embedders.items():
                started = time.perf_counter()
                encode(backend, embedder)(texts, args.batch_size)  # the model itself, past the memo
                took = time.perf_counter() - started
                seconds.setdefault((backend, name), []).append(took)
                fractions.setdefault((backend, name), []).append(stats[name]["useful"] / took / 1e9 / p)
        p_after = matmul_rate(shape)
        rates.append(p_after)

    print(
        f"\nP = {statistics.median(rates):.1f} GFLOP/s fp32 matmul at the model's shapes, 2 threads "
        f"(median of {len(rates)}; range {min(rates):.1f}-{max(rates):.1f}: the machine is shared)"
    )
    references = [b for b in ("torch", "sentence-transformers") if b in embedders]
    header = "".join(f" {'vs ' + ('s-t' if r == 'sentence-transformers' else r):>9s}" for r in references)
    print(f"{'texts':17s} {'backend':21s} {'texts/s':>8s} {'tokens/s':>9s} {'of P':>6s}{header}")
    for name, texts in sets.items():
        for backend in embedders:
            took = statistics.median(seconds[(backend, name)])
            fraction = statistics.median(fractions[(backend, name)])
            versus = ""
            for reference in references:
                ratios = [t / b for t, b in zip(seconds[(reference, name)], seconds[(backend, name)], strict=True)]
                versus += f" {statistics.median(ratios):8.2f}x"
            print(
                f"{name:17s} {backend:21s} {len(texts) / took:8.1f} {stats[name]['tokens'] / took:9.0f} "
                f"{fraction:6.2f}{versus}"
            )
    print(
        "\n'of P': useful FLOPs per second (real tokens, no padding) / P, median over rounds. "
        "int8 and bf16 can exceed 1.0: P is the fp32 limit. "
        "vs s-t: against sentence-transformers' own encode."
    )


if __name__ == "__main__":
    main()
