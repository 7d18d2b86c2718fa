"""Expander: text -> SPLADE sparse vectors with a tokenizer and one fused ONNX session.

Importable on its own (no Lambda, no powertools): this is the library API.

    from splade_expander import Expander
    vectors = Expander().expand(["chronic obstructive pulmonary disease"], top_k=64)
    vectors[0].to_terms()   # {"pulmonary": 2.2, "lung": 1.8, ...}

Inference is split as tokenize -> windows (windows.py) -> run the session (assets.py) -> pool and prune. The
vectors of a text's windows are max-pooled (SPLADE's own pooling), and results return in input order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from . import defaults
from .assets import Vocabulary, check_files, encode, encode_first_window, load_session, read_manifest
from .defaults import available_cpus
from .errors import ModelAssetsError, PayloadTooLargeError
from .options import Kind, check_options, check_texts
from .prune import Prune, one_way_only
from .queries import Encoder, choose, load_idf, query_model_dir
from .specials import SpecialTokensError, special_tokens
from .vectors import Chunk, SparseVector, empty_vector, sparsify
from .windows import Plan, Windowing, max_text_chars, runs, window_starts

__all__ = ["Chunk", "Expander", "SparseVector", "max_text_chars", "window_starts"]  # the last two: older imports

DEFAULT_REQUEST_WINDOWS = 256  # a model whose manifest has no max_request_windows (splade-tiny's measured budget)


class Expander:
    """Loads the model once; ``expand`` turns texts into :class:`SparseVector` objects."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        threads: int | None = None,
        *,
        window_tokens: int | None = None,
        window_overlap: int = 32,
        max_windows: int | None = None,
        tokens_per_run: int | None = None,
    ) -> None:
        # Explicit arguments, else the library's defaults (defaults.py): the environment is never read here
        # (the Lambda runtime passes Settings.expander_options()).
        self.model_dir = Path(model_dir) if model_dir is not None else defaults.MODEL_DIR
        self.threads = threads if threads else available_cpus()
        self.window_tokens = window_tokens or defaults.WINDOW_TOKENS
        self.max_windows = max_windows if max_windows is not None else defaults.MAX_WINDOWS
        self.tokens_per_run = tokens_per_run or defaults.TOKENS_PER_RUN
        low, high = defaults.WINDOW_TOKENS_RANGE
        if not low <= self.window_tokens <= high:
            raise ValueError(f"window_tokens must be in [{low}, {high}], got {self.window_tokens}")
        if not 0 <= window_overlap < (self.window_tokens - 2) // 2:
            raise ValueError(f"window_overlap must be in [0, {(self.window_tokens - 2) // 2}), got {window_overlap}")
        if self.tokens_per_run < defaults.TOKENS_PER_RUN_RANGE[0]:
            raise ValueError(f"tokens_per_run must be >= {defaults.TOKENS_PER_RUN_RANGE[0]}, got {self.tokens_per_run}")
        self.window_overlap = window_overlap
        self.max_chars = max_text_chars(self.max_windows, self.window_tokens)

        check_files(self.model_dir)
        self.manifest: dict[str, Any] = read_manifest(self.model_dir)
        self._load_tokenizer(self.model_dir / "tokenizer.json")
        optimized = self.manifest.get("graph_optimization") == "extended"
        self.session = load_session(self.model_dir / "model.onnx", self.threads, optimized, self.vocab_size)
        self._input_names = {i.name for i in self.session.get_inputs()}
        self.idf = load_idf(self.model_dir, self.tokenizer, self.vocab_size)  # splade_expander/queries.py
        self.query_model = self._load_query_model()

    def _load_tokenizer(self, path: Path) -> None:
        """The tokenizer (no truncation, no padding), its vocabulary and its special tokens."""
        self.tokenizer = Tokenizer.from_file(str(path))
        try:  # the model's own special tokens (specials.py); the pad id conversion recorded, when there is one
            self.specials = special_tokens(
                self.tokenizer, self.manifest.get("special_tokens", {}).get("pad", {}).get("id")
            )
        except SpecialTokensError as exc:
            raise ModelAssetsError(f"tokenizer in {self.model_dir}: {exc}") from None
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)
        self.vocab = Vocabulary(self.tokenizer, self.vocab_size)
        self.special_ids = np.array(self.specials.zeroed, dtype=np.int64)
        self.content_tokens = self.window_tokens - self.specials.framing  # a window's own tokens
        self.windowing = Windowing(
            self.window_tokens, self.content_tokens, self.window_overlap, self.max_windows, self.specials.frame
        )

    def _load_query_model(self) -> Expander | None:
        """The asymmetric query model in ``query/``, when there is one: same windows, same vocabulary."""
        query_dir = query_model_dir(self.model_dir)
        if query_dir is None:
            return None
        query = Expander(
            query_dir, self.threads, window_tokens=self.window_tokens, tokens_per_run=self.tokens_per_run,
            max_windows=self.max_windows,
        )  # fmt: skip
        if query.vocab_size != self.vocab_size:
            raise ModelAssetsError(
                f"{query_dir} has {query.vocab_size} terms, the document model {self.vocab_size}: "
                "query and document vectors must share one vocabulary"
            )
        return query

    # ----------------------------------------------------------------- public API
    def warm(self) -> None:
        """Run the session once, so the first real request does not pay ONNX Runtime's first-run allocations
        (the Lambda init phase calls this; it takes a few milliseconds)."""
        self.expand(["warm up the session with a short sentence of ordinary words."])
        if self.query_model is not None:  # the first query pays nothing either
            self.query_model.warm()

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Every WordPiece id of each text (no special tokens, no windows): what document frequencies count."""
        return [list(e.ids) for e in self._encode(texts)]

    def encoder_for(self, kind: str, query_encoder: str | None = None) -> Encoder:
        """``document``, ``query`` or ``idf``: what ``expand(kind=..., query_encoder=...)`` runs (queries.py)."""
        return choose(query_encoder, kind, has_idf=self.idf is not None, has_query_model=self.query_model is not None)

    @property
    def encoders(self) -> dict[str, Any]:
        """The encoders this model directory has, and the one ``kind="query"`` uses by default."""
        found: dict[str, Any] = {Encoder.DOCUMENT: self.model_info}
        if self.query_model is not None:
            found[Encoder.QUERY] = self.query_model.model_info
        if self.idf is not None:
            found[Encoder.IDF] = self.idf.info
        return {**found, "default_query_encoder": self.encoder_for(Kind.QUERY)}

    @property
    def request_windows(self) -> int:
        """The model's HTTP work budget in windows (manifest ``max_request_windows``, measured by make bench)."""
        return int(self.manifest.get("max_request_windows", DEFAULT_REQUEST_WINDOWS))

    @property
    def model_info(self) -> dict[str, Any]:
        files = self.manifest.get("files", {})
        return {
            "name": self.manifest.get("name", "splade"),
            "precision": self.manifest.get("precision", "unknown"),
            # the graph file and its weights file (model.onnx.data), or the one graph file of an older build
            "sha256": self.manifest.get("model_sha256") or files.get("model.onnx", {}).get("sha256", ""),
            "vocab_size": self.vocab_size,
        }

    def expand(
        self,
        texts: Sequence[str],
        *,
        kind: str = Kind.DOCUMENT,
        top_k: int | None = None,
        min_weight: float = 0.0,
        truncate: bool = False,
        max_total_windows: int | None = None,
        prune: Prune | dict[str, Any] | None = None,
        chunks: bool = False,
        query_encoder: str | None = None,
    ) -> list[SparseVector]:
        """SPLADE vectors for ``texts``, in input order.

        ``prune``: ``{"type": "top_k" | "max_ratio" | "abs_value" | "alpha_mass", "value": x}`` with OpenSearch's
        semantics and ranges (splade_expander/prune.py); not together with ``top_k`` or ``min_weight``.

        ``top_k``: keep at most this many terms (the heaviest; ties go to the lower index).
        ``min_weight``: keep terms whose weight is >= this value (zero weights are never returned).
        ``truncate``: only the first window of a long text (otherwise every window, max-pooled).
        ``kind="query"``: one window, encoded by idf weights when the model directory has an ``idf.json``, else by
        its ``query/`` model, else by the document model; ``query_encoder`` (``idf`` | ``model``) chooses
        (splade_expander/queries.py). ``SparseVector.encoder`` says which ran.
        ``chunks``: also each window's own vector and character span (``SparseVector.chunks``), pruned the same
        way as the pooled vector.
        ``max_total_windows``: a work budget for the whole call, checked after tokenizing and before any
        inference (PayloadTooLargeError ``too_much_work``).
        """
        self._check_args(texts, kind, top_k, min_weight, truncate)
        check_options({"chunks": chunks, "query_encoder": query_encoder})
        rule = None if prune is None else Prune.parse(prune)
        if rule is not None and (top_k is not None or min_weight != 0.0):
            raise one_way_only()
        encoder = self.encoder_for(kind, query_encoder)
        if encoder is Encoder.IDF:
            return self._idf_vectors(texts, top_k, min_weight, rule, chunks)
        if encoder is Encoder.QUERY and self.query_model is not None:
            vectors = self.query_model.expand(
                texts, kind=Kind.QUERY, top_k=top_k, min_weight=min_weight, prune=rule, chunks=chunks,
                max_total_windows=max_total_windows,
            )  # fmt: skip
            return [replace(v, encoder=Encoder.QUERY) for v in vectors]
        plan = self._plan(texts, truncate or kind == Kind.QUERY, chunks)
        if max_total_windows is not None and len(plan.windows) > max_total_windows:
            raise PayloadTooLargeError(
                f"the texts need {len(plan.windows)} windows of {self.window_tokens} tokens; one request may use "
                f"{max_total_windows}: send fewer or shorter texts, or truncate=true",
                field="texts",
                code="too_much_work",
            )
        return self._pool(plan, top_k, min_weight, rule, chunks)

    # ----------------------------------------------------------------- expand's stages
    def _plan(self, texts: Sequence[str], one_window: bool, chunks: bool) -> Plan:
        """Tokenize and cut every text into windows of ids framed by the model's special tokens."""
        encodings = self._encode_first_window(texts, self.content_tokens) if one_window else self._encode(texts)
        return self.windowing.plan(encodings, one_window, chunks)

    def _pool(
        self, plan: Plan, top_k: int | None, min_weight: float, rule: Prune | None, chunks: bool
    ) -> list[SparseVector]:
        """Run the windows and max-pool each text's as its last window comes back; results in input order."""
        counts = plan.counts
        results: list[SparseVector] = [empty_vector(self.vocab)] * len(counts)
        pending: dict[int, np.ndarray] = {}
        remaining = list(counts)
        parts: dict[int, dict[int, Chunk]] = {}  # text -> window -> chunk (chunks only)
        for run, dense in self._runs(plan.windows):
            for row, k in enumerate(run):
                i, ids = plan.windows[k]
                vec = dense[row]
                if chunks and counts[i] > 1:  # a one-window text's chunk is its pooled vector
                    part = self._sparsify(
                        vec.copy(), len(ids) - self.specials.framing, 1, top_k, min_weight, prune=rule
                    )
                    parts.setdefault(i, {})[k] = Chunk(plan.spans[k], part)
                if counts[i] > 1:
                    acc = pending.get(i)
                    vec = vec.copy() if acc is None else np.maximum(acc, vec, out=acc)
                    pending[i] = vec
                remaining[i] -= 1
                if remaining[i] == 0:
                    pending.pop(i, None)
                    pooled = self._sparsify(vec, plan.covered[i], counts[i], top_k, min_weight, prune=rule)
                    if chunks:
                        own = parts.pop(i, None)
                        whole = (Chunk(plan.spans[k], replace(pooled, chunks=())),)
                        pooled = replace(pooled, chunks=tuple(own[w] for w in sorted(own)) if own else whole)
                    results[i] = pooled
        return results

    # ----------------------------------------------------------------- internals
    def _idf_vectors(
        self, texts: Sequence[str], top_k: int | None, min_weight: float, rule: Prune | None, chunks: bool
    ) -> list[SparseVector]:
        """Inference-free query vectors: each distinct token of the first window weighted by idf.json."""
        assert self.idf is not None
        content = self.content_tokens
        out = []
        for enc in self._encode_first_window(texts, content):
            ids = enc.ids[:content]
            vec = np.zeros(self.vocab_size, dtype=np.float32)
            if ids:
                index = np.asarray(ids, dtype=np.int64)
                vec[index] = self.idf.weights[index]
            vector = replace(self._sparsify(vec, len(ids), 0, top_k, min_weight, prune=rule), encoder=Encoder.IDF)
            if chunks and ids:
                vector = replace(vector, chunks=(Chunk((enc.offsets[0][0], enc.offsets[len(ids) - 1][1]), vector),))
            out.append(vector)
        return out

    def _encode_first_window(self, texts: Sequence[str], content: int) -> list[Any]:
        return encode_first_window(self.tokenizer, texts, content)

    def _check_args(
        self, texts: Sequence[str], kind: str, top_k: int | None, min_weight: float, truncate: bool
    ) -> None:
        """The request rules (request.py), then the character bound of MAX_WINDOWS."""
        check_texts(texts)
        check_options({"kind": kind, "top_k": top_k, "min_weight": min_weight, "truncate": truncate})
        if truncate or kind == Kind.QUERY or self.max_chars is None:
            return
        for i, text in enumerate(texts):
            if len(text) > self.max_chars:
                raise PayloadTooLargeError(
                    f"text {i} has {len(text)} characters; more than {self.max_windows} windows can hold "
                    f"(limit {self.max_chars} characters); shorten it",
                    index=i,
                    code="text_too_long",
                    reason="chars_bound",
                )

    def _encode(self, texts: Sequence[str]) -> list[Any]:
        return encode(self.tokenizer, texts)

    def _runs(self, windows: list[tuple[int, list[int]]]) -> Iterator[tuple[list[int], np.ndarray]]:
        """Yield (indices of the run's windows, [rows, vocab] output) for length-sorted runs (windows.runs)."""
        for run, ids, mask in runs(windows, self.tokens_per_run, self.specials.pad):
            feed = {"input_ids": ids, "attention_mask": mask}
            yield run, self.session.run(None, {k: v for k, v in feed.items() if k in self._input_names})[0]

    def _sparsify(self, vec: np.ndarray, tokens: int, windows: int, top_k: int | None, min_weight: float, *,
                  prune: Prune | None = None) -> SparseVector:  # fmt: skip
        return sparsify(vec, self.special_ids, self.vocab, tokens, windows, top_k=top_k, min_weight=min_weight,
                        prune=prune)  # fmt: skip
