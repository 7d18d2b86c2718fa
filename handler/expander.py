"""Expander: text -> SPLADE sparse vectors with a tokenizer and one fused ONNX session.

Importable on its own (no Lambda, no powertools): this is the library API.

    from handler.expander import Expander
    vectors = Expander().expand(["chronic obstructive pulmonary disease"], top_k=64)
    vectors[0].to_terms()   # {"pulmonary": 2.2, "lung": 1.8, ...}

Inference is split as tokenize -> run session -> post-process. Texts are cut into windows of at most
``window_tokens`` (including the model's framing tokens: [CLS]/[SEP], or <s>/</s>); windows are sorted by length
and packed into runs of at most ``tokens_per_run`` padded tokens (a longer window runs alone), so padding is small,
the projection's int32 accumulators stay in cache and peak memory is bounded whatever the request; the vectors of a
text's windows are max-pooled (SPLADE's own pooling), and results return in input order.

Over 300 lines on purpose: this is the library API in one importable file (SparseVector, windowing, the session,
pooling and pruning), with no dependency on Lambda or Powertools.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from . import defaults
from .defaults import available_cpus
from .errors import ModelAssetsError, PayloadTooLargeError
from .options import check_options, check_texts
from .prune import Prune, keep_count, one_way_only
from .queries import choose, load_idf, query_model_dir
from .specials import SpecialTokensError, special_tokens

DEFAULT_REQUEST_WINDOWS = 256  # a model whose manifest has no max_request_windows (splade-tiny's measured budget)
MAX_WINDOW_TOKENS = defaults.WINDOW_TOKENS_RANGE[1]
# A text longer than max_windows x window x this many characters cannot fit and is refused before it is
# tokenized (tokenizing 4 MB of text takes ~4 s and ~650 MB). English averages ~4.5 characters per token.
CHARS_PER_TOKEN_BOUND = 16


def max_text_chars(max_windows: int | None, window_tokens: int) -> int | None:
    """The longest text worth tokenizing for ``max_windows`` windows (None: unbounded): a token spans at most
    CHARS_PER_TOKEN_BOUND characters."""
    return None if max_windows is None else max_windows * (window_tokens - 2) * CHARS_PER_TOKEN_BOUND


@dataclass(frozen=True)
class SparseVector:
    """One text's SPLADE vector: ``indices`` (int32) sorted by weight descending, ``values`` (float32).

    ``chunks`` (only with ``expand(..., chunks=True)``): each window's own vector, in text order, with the
    character span ``[start, end)`` of the text it covers."""

    indices: np.ndarray
    values: np.ndarray
    tokens: int  # tokens of the text the vector covers (the window framing not counted)
    windows: int  # model windows run for this text
    vocab: Sequence[str] = field(default=(), repr=False, compare=False)
    chunks: tuple[Chunk, ...] = field(default=(), repr=False)
    encoder: str = "document"  # what produced it: document (model), query (the query/ model) or idf (no model)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __eq__(self, other: object) -> bool:
        """Same terms, weights, token and window counts (the dataclass default compares arrays and raises)."""
        if not isinstance(other, SparseVector):
            return NotImplemented
        return (
            self.tokens == other.tokens
            and self.windows == other.windows
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.values, other.values)
            and self.chunks == other.chunks
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays: compared by value, not hashable

    def _rounded(self, decimals: int | None) -> tuple[list[int], list[float]]:
        """Indices and values, rounded to ``decimals``; a weight that rounds to 0 is dropped (zero weights are
        never returned, and rank_features refuses them). Sorted descending, so those are the tail."""
        values = self.values.astype(np.float64)
        if decimals is None:
            return self.indices.tolist(), values.tolist()
        rounded = np.round(values, decimals)
        kept = int(np.count_nonzero(rounded > 0))
        return self.indices[:kept].tolist(), rounded[:kept].tolist()

    def to_indices(self, decimals: int | None = None) -> dict[str, list[Any]]:
        """``{"indices": [...], "values": [...]}`` (Elasticsearch/Qdrant/Pinecone/Milvus sparse shape)."""
        indices, values = self._rounded(decimals)
        return {"indices": indices, "values": values}

    def to_terms(self, decimals: int | None = None) -> dict[str, float]:
        """``{term: weight}`` with the tokenizer's WordPiece strings (OpenSearch rank_features shape)."""
        if not self.vocab:
            raise ValueError("this vector has no vocabulary attached; use to_indices()")
        vocab = self.vocab
        indices, values = self._rounded(decimals)
        return {vocab[i]: v for i, v in zip(indices, values, strict=True)}

    def dense(self, vocab_size: int) -> np.ndarray:
        out = np.zeros(vocab_size, dtype=np.float32)
        out[self.indices] = self.values
        return out


@dataclass(frozen=True)
class Chunk:
    """One window of a text: its vector and the character span ``[start, end)`` of the text it covers, from
    the tokenizer's offsets (``text[start:end]`` is the window's text)."""

    span: tuple[int, int]
    vector: SparseVector


class _Vocabulary(Sequence[str]):
    """id -> WordPiece string, built on first use (only ``to_terms`` needs it; keeps it out of cold start)."""

    def __init__(self, tokenizer: Tokenizer, size: int) -> None:
        self._tokenizer, self._size = tokenizer, size

    @cached_property
    def _strings(self) -> tuple[str, ...]:
        return tuple(self._tokenizer.id_to_token(i) or "" for i in range(self._size))

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:
        return self._strings[index]


def window_starts(n: int, content: int, overlap: int) -> tuple[list[int], int]:
    """Evenly spaced windows over ``n`` tokens: the fewest windows of at most ``content`` tokens that
    overlap by at least ``overlap`` (give or take one token of rounding), all of one length.

    Returns (start offsets, window length). Even windows waste less than fixed-size windows with a short
    tail: a 400-token text becomes two windows of 216 tokens, not 254 + 254.
    """
    if n <= content:
        return [0], n
    k = -(-(n - overlap) // (content - overlap))  # ceil
    length = -(-(n + (k - 1) * overlap) // k)
    step = (n - length) / (k - 1)
    return [round(i * step) for i in range(k)], length


def _session_options(threads: int, optimized: bool) -> ort.SessionOptions:
    """``optimized``: the graph was optimized at build time (manifest ``graph_optimization``), so ORT does not
    optimize it again at every cold start; any other graph gets ORT's full optimization at load."""
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


@dataclass
class _Plan:
    """One expand call's windows: (text index, framed ids) each, the characters each covers (chunks),
    and per text its window count and the tokens its windows cover."""

    counts: list[int]
    covered: list[int]
    windows: list[tuple[int, list[int]]] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)


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

        model_path = self.model_dir / "model.onnx"
        tokenizer_path = self.model_dir / "tokenizer.json"
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise ModelAssetsError(f"could not find {path.name} in {self.model_dir}; run `make model`")
        manifest_path = self.model_dir / "manifest.json"
        self.manifest: dict[str, Any] = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        self._load_tokenizer(tokenizer_path)
        self._load_session(model_path)
        self.idf = load_idf(self.model_dir, self.tokenizer, self.vocab_size)  # handler/queries.py
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
        self.vocab = _Vocabulary(self.tokenizer, self.vocab_size)
        self.special_ids = np.array(self.specials.zeroed, dtype=np.int64)
        self.content_tokens = self.window_tokens - self.specials.framing  # a window's own tokens

    def _load_session(self, path: Path) -> None:
        """The ONNX Runtime session, which must give one [batch, vocab] output."""
        optimized = self.manifest.get("graph_optimization") == "extended"
        self.session = ort.InferenceSession(
            str(path), _session_options(self.threads, optimized), providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self.session.get_inputs()}
        outputs = self.session.get_outputs()
        if len(outputs) != 1 or outputs[0].shape[-1] != self.vocab_size:
            raise ModelAssetsError(f"{path} must have one [batch, {self.vocab_size}] output")

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

    def encoder_for(self, kind: str, query_encoder: str | None = None) -> str:
        """``document``, ``query`` or ``idf``: what ``expand(kind=..., query_encoder=...)`` runs (queries.py)."""
        return choose(query_encoder, kind, has_idf=self.idf is not None, has_query_model=self.query_model is not None)

    @property
    def encoders(self) -> dict[str, Any]:
        """The encoders this model directory has, and the one ``kind="query"`` uses by default."""
        found: dict[str, Any] = {"document": self.model_info}
        if self.query_model is not None:
            found["query"] = self.query_model.model_info
        if self.idf is not None:
            found["idf"] = self.idf.info
        return {**found, "default_query_encoder": self.encoder_for("query")}

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
        kind: str = "document",
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
        semantics and ranges (handler/prune.py); not together with ``top_k`` or ``min_weight``.

        ``top_k``: keep at most this many terms (the heaviest; ties go to the lower index).
        ``min_weight``: keep terms whose weight is >= this value (zero weights are never returned).
        ``truncate``: only the first window of a long text (otherwise every window, max-pooled).
        ``kind="query"``: one window, encoded by idf weights when the model directory has an ``idf.json``, else by
        its ``query/`` model, else by the document model; ``query_encoder`` (``idf`` | ``model``) chooses
        (handler/queries.py). ``SparseVector.encoder`` says which ran.
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
        if encoder == "idf":
            return self._idf_vectors(texts, top_k, min_weight, rule, chunks)
        if encoder == "query" and self.query_model is not None:
            vectors = self.query_model.expand(
                texts, kind="query", top_k=top_k, min_weight=min_weight, prune=rule, chunks=chunks,
                max_total_windows=max_total_windows,
            )  # fmt: skip
            return [replace(v, encoder="query") for v in vectors]
        plan = self._plan(texts, truncate or kind == "query", chunks)
        if max_total_windows is not None and len(plan.windows) > max_total_windows:
            raise PayloadTooLargeError(
                f"the texts need {len(plan.windows)} windows of {self.window_tokens} tokens; one request may use "
                f"{max_total_windows}: send fewer or shorter texts, or truncate=true",
                field="texts",
                code="too_much_work",
            )
        return self._pool(plan, top_k, min_weight, rule, chunks)

    # ----------------------------------------------------------------- expand's stages
    def _plan(self, texts: Sequence[str], one_window: bool, chunks: bool) -> _Plan:
        """Tokenize and cut every text into windows of ids framed by the model's special tokens (MAX_WINDOWS
        checked per text)."""
        content = self.content_tokens
        encodings = self._encode_first_window(texts, content) if one_window else self._encode(texts)
        plan = _Plan(counts=[0] * len(texts), covered=[0] * len(texts))
        for i, enc in enumerate(encodings):
            ids = enc.ids
            n = len(ids)
            if n == 0:
                continue
            if n <= content or one_window:
                starts, length = [0], content
            else:
                starts, length = window_starts(n, content, self.window_overlap)
            if self.max_windows is not None and len(starts) > self.max_windows:
                raise PayloadTooLargeError(
                    f"text {i} needs {len(starts)} windows of {self.window_tokens} tokens (limit {self.max_windows}); "
                    "shorten it or pass truncate=true",
                    index=i,
                    code="text_too_long",
                    reason="max_windows",
                )
            plan.counts[i] = len(starts)
            plan.covered[i] = min(n, content) if one_window else n
            plan.windows.extend((i, self.specials.frame(ids[s : s + length])) for s in starts)
            if chunks:
                offsets = enc.offsets
                plan.spans.extend((offsets[s][0], offsets[min(s + length, n) - 1][1]) for s in starts)
        return plan

    def _pool(
        self, plan: _Plan, top_k: int | None, min_weight: float, rule: Prune | None, chunks: bool
    ) -> list[SparseVector]:
        """Run the windows and max-pool each text's as its last window comes back; results in input order."""
        counts = plan.counts
        empty = SparseVector(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32), 0, 0, self.vocab)
        results: list[SparseVector] = [empty] * len(counts)
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
            vector = replace(self._sparsify(vec, len(ids), 0, top_k, min_weight, prune=rule), encoder="idf")
            if chunks and ids:
                vector = replace(vector, chunks=(Chunk((enc.offsets[0][0], enc.offsets[len(ids) - 1][1]), vector),))
            out.append(vector)
        return out

    def _encode_first_window(self, texts: Sequence[str], content: int) -> list[Any]:
        """Encodings that cover at least the first window of each text, without tokenizing megabytes for 254
        tokens: a prefix is encoded, and grown (x4) only while it is cut short of a window, e.g. by a long run
        of characters the tokenizer drops."""
        cut = content * CHARS_PER_TOKEN_BOUND * 2
        encodings = self._encode([t[:cut] for t in texts])
        for i, text in enumerate(texts):
            size = cut
            while size < len(text) and len(encodings[i].ids) < content:
                size *= 4
                encodings[i] = self._encode([text[:size]])[0]
        return encodings

    def _check_args(
        self, texts: Sequence[str], kind: str, top_k: int | None, min_weight: float, truncate: bool
    ) -> None:
        """The request rules (request.py), then the character bound of MAX_WINDOWS."""
        check_texts(texts)
        check_options({"kind": kind, "top_k": top_k, "min_weight": min_weight, "truncate": truncate})
        if truncate or kind == "query" or self.max_chars is None:
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
        if not texts:
            return []
        try:
            if len(texts) == 1:  # one text: no batch dispatch (queries and titles come one at a time)
                return [self.tokenizer.encode(texts[0], add_special_tokens=False)]
            return list(self.tokenizer.encode_batch(list(texts), add_special_tokens=False))
        except TypeError:  # a lone surrogate (e.g. "\\ud800" escaped in JSON) cannot cross into Rust
            clean = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]  # lone surrogate -> "?"
            return list(self.tokenizer.encode_batch(clean, add_special_tokens=False))

    def _runs(self, windows: list[tuple[int, list[int]]]) -> Iterator[tuple[list[int], np.ndarray]]:
        """Yield (indices of the run's windows, [rows, vocab] output) for length-sorted runs within the token
        budget."""
        order = sorted(range(len(windows)), key=lambda k: len(windows[k][1]))
        start = 0
        while start < len(order):
            end = start + 1
            # Sorted ascending: the run's padded size is (count) x (length of its last window).
            while end < len(order) and (end - start + 1) * len(windows[order[end]][1]) <= self.tokens_per_run:
                end += 1
            run = order[start:end]
            width = len(windows[run[-1]][1])
            ids = np.full((len(run), width), self.specials.pad, dtype=np.int64)
            mask = np.zeros((len(run), width), dtype=np.int64)
            for row, (_, toks) in enumerate(windows[k] for k in run):
                ids[row, : len(toks)] = toks
                mask[row, : len(toks)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            out = self.session.run(None, {k: v for k, v in feed.items() if k in self._input_names})[0]
            yield run, out
            start = end

    def _sparsify(
        self,
        vec: np.ndarray,
        tokens: int,
        windows: int,
        top_k: int | None,
        min_weight: float,
        *,
        prune: Prune | None = None,
    ) -> SparseVector:
        vec[self.special_ids] = 0.0
        keep = vec > 0.0
        if min_weight > 0.0:
            keep &= vec >= np.float32(min_weight)
        idx = np.flatnonzero(keep)
        vals = vec[idx]
        order = np.lexsort((idx, -vals))  # weight descending, then index ascending
        if top_k is not None:
            order = order[:top_k]
        if prune is not None:
            order = order[: keep_count(vals[order].astype(np.float32), prune)]
        return SparseVector(idx[order].astype(np.int32), vals[order].astype(np.float32), tokens, windows, self.vocab)
