"""The Expander library API: batching, windows, pruning semantics, edge-case text, typed errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from devkit import MODEL_DIR
from devkit.corpus import HAND_WRITTEN, fidelity_texts, prose_paragraphs
from splade_expander.errors import InvalidRequestError, ModelAssetsError, PayloadTooLargeError
from splade_expander.expander import Expander, window_starts

V = 30522


def _dense_equal(a, b, tol: float = 1e-6) -> bool:  # equal up to float32 rounding
    return bool(np.abs(a.dense(V) - b.dense(V)).max() <= tol)


def test_known_expansion_terms(expander) -> None:
    """A medical sentence gets its own terms and expansion terms it never says, heaviest first."""
    (vec,) = expander.expand(["Chronic obstructive pulmonary disease (COPD) is a progressive lung disease."])
    terms = vec.to_terms()
    assert {"pulmonary", "lung", "chronic", "disease"} <= set(list(terms)[:12])
    assert vec.values.dtype == np.float32 and vec.indices.dtype == np.int32
    assert np.all(np.diff(vec.values) <= 0)  # sorted by weight, descending
    assert 1.5 < terms["pulmonary"] < 3.0


def test_vector_alone_equals_vector_inside_a_mixed_batch(expander) -> None:
    """A text's vector does not depend on what else is in the batch (equal up to float rounding)."""
    texts = fidelity_texts()
    together = expander.expand(texts)
    for i in (0, 3, 7, 25, len(texts) - 1):
        (alone,) = expander.expand([texts[i]])
        assert _dense_equal(alone, together[i]), i
        assert alone.tokens == together[i].tokens


def test_results_come_back_in_input_order(expander) -> None:
    """Length-sorted bucketing never reorders results: each slot holds its own text's vector."""
    texts = ["a short one", prose_paragraphs()[5], "hello", prose_paragraphs()[9] * 3, "mitochondria"]
    batched = expander.expand(texts)
    singles = [expander.expand([t])[0] for t in texts]
    for b, s in zip(batched, singles, strict=True):
        assert _dense_equal(b, s)
    assert [v.tokens for v in batched] == [len(expander.tokenizer.encode(t, add_special_tokens=False)) for t in texts]


def test_long_text_windows_reach_the_end_and_truncate_does_not(expander) -> None:
    """Words at the end of a 3,000-word text are in its vector; with truncate=True they are not."""
    filler = " ".join(" ".join(prose_paragraphs()).split()[:3000])
    assert "saxophone" not in filler and "elephant" not in filler
    text = filler + " The saxophone player fed the elephant."
    (full,), (cut,) = expander.expand([text]), expander.expand([text], truncate=True)
    sax, elephant = (expander.tokenizer.token_to_id(w) for w in ("saxophone", "elephant"))
    n_tokens = len(expander.tokenizer.encode(text, add_special_tokens=False))
    assert full.tokens == n_tokens and full.windows == -(-(n_tokens - 32) // (254 - 32))
    assert cut.windows == 1 and cut.tokens == 254
    full_terms = dict(zip(full.indices.tolist(), full.values.tolist(), strict=True))
    assert full_terms.get(sax, 0) > 0.5 and full_terms.get(elephant, 0) > 0.5
    assert sax not in cut.indices.tolist() and elephant not in cut.indices.tolist()


def test_long_text_vector_is_the_max_of_its_windows(expander) -> None:
    """A multi-window vector is the element-wise max of its windows' vectors (SPLADE pooling)."""
    small = Expander(MODEL_DIR, threads=1, window_tokens=32, window_overlap=0)
    words = "the cat sat on the mat while the dog barked at the mailman near the old red barn " * 4
    ids = small.tokenizer.encode(words, add_special_tokens=False).ids
    (pooled,) = small.expand([words])
    # Fewest windows of <= 30 tokens (here 3), all of one length (ceil(76 / 3) = 26), evenly spaced.
    assert len(ids) == 76
    parts = [small.tokenizer.decode(ids[s : s + 26]) for s in (0, 25, 50)]
    assert [len(small.tokenizer.encode(p, add_special_tokens=False)) for p in parts] == [26] * 3
    assert pooled.windows == 3
    per_window = small.expand(parts)
    expected = np.max([v.dense(V) for v in per_window], axis=0)
    assert np.abs(pooled.dense(V) - expected).max() <= 1e-6


def test_query_kind_uses_one_window(expander) -> None:
    """kind="query" runs one window (same model) and equals the truncated document vector."""
    text = " ".join(prose_paragraphs()[:20])
    (q,) = expander.expand([text], kind="query")
    (d,) = expander.expand([text], truncate=True)
    assert q.windows == 1 and _dense_equal(q, d)


def test_top_k_and_min_weight_semantics(expander) -> None:
    """top_k keeps the k heaviest; min_weight keeps weights >= it; both compose; zeros never appear."""
    text = HAND_WRITTEN[0]
    (full,) = expander.expand([text])
    assert np.all(full.values > 0)
    (top5,) = expander.expand([text], top_k=5)
    assert top5.indices.tolist() == full.indices[:5].tolist()
    assert top5.values.tolist() == full.values[:5].tolist()
    threshold = float(full.values[10])
    (heavy,) = expander.expand([text], min_weight=threshold)
    assert heavy.indices.tolist() == full.indices[full.values >= np.float32(threshold)].tolist()
    assert len(heavy) >= 11
    (both,) = expander.expand([text], top_k=3, min_weight=threshold)
    assert both.indices.tolist() == full.indices[:3].tolist()
    (none,) = expander.expand([text], min_weight=100.0)
    assert len(none) == 0
    (huge,) = expander.expand([text], top_k=10**6)
    assert _dense_equal(huge, full)


def test_special_tokens_never_appear(expander) -> None:
    """[CLS] [SEP] [PAD] [UNK] [MASK] are never output terms, even when the text spells them."""
    texts = ["[CLS] [SEP] [MASK] [UNK] [PAD] literal special tokens", "\u2060\u200b\ufeff", "hello [MASK] world"]
    for vec in expander.expand(texts):
        assert not set(vec.indices.tolist()) & {0, 100, 101, 102, 103}


def test_unicode_emoji_and_cjk_give_valid_vectors(expander) -> None:
    """Non-ASCII text gives finite, positive, non-empty vectors with real terms."""
    texts = ["東京は日本の首都です。", "🚀🔥 launch day! 🎉", "Привет, как дела?", "e\u0301te\u0301", "العربية"]
    for text, vec in zip(texts, expander.expand(texts), strict=True):
        assert len(vec) > 0, text
        assert np.all(np.isfinite(vec.values)) and np.all(vec.values > 0)
        assert all(isinstance(t, str) and t for t in vec.to_terms())
    assert "東" in expander.expand(["東京"])[0].to_terms()


def test_empty_and_whitespace_texts_give_empty_vectors(expander) -> None:
    """Empty or whitespace-only text gives an empty vector with zero tokens and windows."""
    vecs = expander.expand(["", "   \n\t ", "word"])
    assert [len(v) for v in vecs[:2]] == [0, 0]
    assert [(v.tokens, v.windows) for v in vecs[:2]] == [(0, 0), (0, 0)]
    assert len(vecs[2]) > 0
    assert expander.expand([]) == []
    assert vecs[0].to_indices() == {"indices": [], "values": []} and vecs[0].to_terms() == {}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"texts": ["ok", 7]}, "texts[1]"),
        ({"texts": ["ok", None, "x"]}, "texts[1]"),
        ({"texts": "a bare string"}, "texts"),
        ({"texts": ["ok"], "kind": "passage"}, "kind"),
        ({"texts": ["ok"], "top_k": 0}, "top_k"),
        ({"texts": ["ok"], "top_k": 2.5}, "top_k"),
        ({"texts": ["ok"], "top_k": True}, "top_k"),
        ({"texts": ["ok"], "min_weight": -0.1}, "min_weight"),
        ({"texts": ["ok"], "min_weight": float("nan")}, "min_weight"),
        ({"texts": ["ok"], "min_weight": float("inf")}, "min_weight"),
        ({"texts": ["ok"], "min_weight": 10**400}, "min_weight"),
    ],
)
def test_bad_arguments_raise_typed_errors_naming_the_field(expander, kwargs, field) -> None:
    """Wrong types or values raise InvalidRequestError (a ValueError) naming the offending field."""
    texts = kwargs.pop("texts")
    with pytest.raises(InvalidRequestError) as info:
        expander.expand(texts, **kwargs)
    assert info.value.field == field
    assert info.value.status == 400 and info.value.code == "invalid_request"
    assert isinstance(info.value, ValueError)


def test_max_windows_limit_names_the_text() -> None:
    """A text needing more windows than max_windows is a 413 text_too_long naming its index."""
    capped = Expander(MODEL_DIR, threads=1, max_windows=2)
    long_text = " ".join(prose_paragraphs()[:30])
    with pytest.raises(PayloadTooLargeError) as info:
        capped.expand(["short", long_text])
    assert info.value.field == "texts[1]" and info.value.code == "text_too_long"
    (vec,) = capped.expand([long_text], truncate=True)
    assert vec.windows == 1


def test_text_too_long_for_max_windows_is_refused_before_tokenizing() -> None:
    """With max_windows set, a text too long to fit is a 413 before it is tokenized (bounded memory and time)."""
    capped = Expander(MODEL_DIR, threads=1, max_windows=2)
    assert capped.max_chars == 2 * 254 * 16
    calls: list[int] = []
    real_encode = capped._encode
    capped._encode = lambda texts: calls.append(1) or real_encode(texts)  # type: ignore[method-assign,func-returns-value]
    with pytest.raises(PayloadTooLargeError, match="characters") as info:
        capped.expand(["fine", "word " * 2000])
    assert info.value.field == "texts[1]" and info.value.code == "text_too_long"
    assert calls == []


def test_token_budget_bounds_every_run_without_changing_results(expander) -> None:
    """No ONNX run exceeds tokens_per_run padded tokens, and the budget does not change any vector."""
    tight = Expander(MODEL_DIR, threads=2, tokens_per_run=256)
    shapes: list[tuple[int, int]] = []
    real_run = tight.session.run

    def spy(names, feed):
        shapes.append(feed["input_ids"].shape)
        return real_run(names, feed)

    tight.session.run = spy
    texts = [*fidelity_texts(), " ".join(prose_paragraphs()[:15])]
    got = tight.expand(texts)
    assert len(shapes) > 3 and all(b * s <= 256 for b, s in shapes)
    for a, b in zip(got, expander.expand(texts), strict=True):
        assert _dense_equal(a, b)


def test_missing_model_dir_is_an_actionable_error(tmp_path) -> None:
    """A model directory without model.onnx says which file is missing and how to build it."""
    with pytest.raises(ModelAssetsError, match=r"could not find model.onnx in .*make model"):
        Expander(tmp_path)


def test_model_info_comes_from_the_manifest(expander) -> None:
    """model_info reports the manifest's name, precision and model sha256, and the vocabulary size."""
    info = expander.model_info
    assert info["name"] == "splade-tiny" and info["precision"] == "int8" and info["vocab_size"] == V
    assert info["sha256"] == expander.manifest["model_sha256"] and len(info["sha256"]) == 64


@pytest.mark.parametrize(
    ("n", "content", "overlap"), [(255, 254, 32), (400, 254, 32), (4000, 254, 32), (76, 30, 0), (1000, 62, 8)]
)
def test_window_starts_cover_the_text_with_the_promised_overlap(n: int, content: int, overlap: int) -> None:
    """Windows cover every token, fit the window, overlap by >= overlap - 1, and are as few as possible."""
    starts, length = window_starts(n, content, overlap)
    assert length <= content and starts[0] == 0 and starts[-1] + length == n
    assert all(b - a <= length - overlap + 1 for a, b in itertools.pairwise(starts))
    assert len(starts) == -(-(n - overlap) // (content - overlap))


def test_sparse_vectors_compare_by_value(expander) -> None:
    """SparseVector == compares terms, weights and counts (it raised ValueError on ndarrays before)."""
    a, b, c = expander.expand(["lung disease", "lung disease", "router password"])
    assert a == b and a != c and (a == "lung disease") is False


def test_ingest_reason_for_a_document_over_max_windows_names_the_setting() -> None:
    """In ingest a too-long document's reason names MAX_WINDOWS and says to split it (ingest has no truncate)."""
    from devkit import MODEL_DIR
    from splade_expander.documents import Document, expand_documents
    from splade_expander.expander import Expander

    small = Expander(MODEL_DIR, threads=1, max_windows=1)
    docs = [Document("long", "lung disease " * 400, 1), Document("short", "lung disease", 2)]
    results, errors = expand_documents(small, docs, "indices")
    assert [d.id for d, _, _ in results] == ["short"]
    (error,) = errors
    assert (error.id, error.line, error.code) == ("long", 1, "text_too_long")
    assert "MAX_WINDOWS=1" in error.reason and "truncate" not in error.reason


def test_the_library_never_reads_the_functions_environment(monkeypatch) -> None:
    """The function's variables set in the shell do not change what Expander(model_dir) returns: the library
    takes explicit arguments or its own defaults; the Lambda runtime passes Settings.expander_options()."""
    from devkit import MODEL_DIR
    from handler.config import Settings
    from splade_expander import defaults
    from splade_expander.expander import Expander

    text = "lung disease " * 400  # 801 tokens: 4 windows
    (plain,) = Expander(MODEL_DIR, threads=1).expand([text])
    for name, value in {
        "MAX_WINDOWS": "1",
        "WINDOW_TOKENS": "32",
        "TOKENS_PER_RUN": "16",
        "MODEL_DIR": "/nowhere",
    }.items():
        monkeypatch.setenv(name, value)
    shelled = Expander(MODEL_DIR, threads=1)
    assert (shelled.max_windows, shelled.window_tokens, shelled.tokens_per_run) == (
        defaults.MAX_WINDOWS,
        defaults.WINDOW_TOKENS,
        defaults.TOKENS_PER_RUN,
    )
    (again,) = shelled.expand([text])
    assert again.indices.tolist() == plain.indices.tolist() and again.values.tolist() == plain.values.tolist()
    settings = Settings(model_dir=MODEL_DIR, max_windows=3)
    assert Expander(**settings.expander_options()).max_windows == 3
    with pytest.raises(PayloadTooLargeError, match="limit 3"):
        Expander(**settings.expander_options() | {"threads": 1}).expand([text])


def test_one_window_modes_look_past_a_prefix_the_tokenizer_drops(expander) -> None:
    """truncate/query on a text whose first 10,000 characters are control characters (dropped by the
    tokenizer) still read the words after them, like the same words alone."""
    text = "\x01" * 10_000 + " chronic lung disease"
    (alone,) = expander.expand(["chronic lung disease"], truncate=True)
    for kwargs in ({"truncate": True}, {"kind": "query"}):
        (vec,) = expander.expand([text], **kwargs)
        assert vec.tokens == alone.tokens > 0 and vec.indices.tolist() == alone.indices.tolist()
        assert np.allclose(vec.values, alone.values, atol=1e-6)


def test_a_weight_that_rounds_to_zero_is_not_returned() -> None:
    """Output rounded to 6 decimals never carries a 0.0 weight (rank_features refuses them): such a tail is
    dropped from both shapes, and kept unrounded."""
    import numpy as np

    from splade_expander.expander import SparseVector

    vec = SparseVector(
        np.array([7, 3, 9], dtype=np.int32), np.array([1.5, 2e-6, 4e-7], dtype=np.float32), 3, 1, list("abcdefghij")
    )
    assert vec.to_indices(6) == {"indices": [7, 3], "values": [1.5, 2e-6]}
    assert vec.to_terms(6) == {"h": 1.5, "d": 2e-6}
    assert vec.to_indices()["indices"] == [7, 3, 9]
