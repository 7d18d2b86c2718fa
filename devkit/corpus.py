"""Deterministic test and benchmark texts, available offline (Python's own documentation prose)."""

from __future__ import annotations

import pydoc_data.topics
import re
from typing import Any

HAND_WRITTEN = [
    "Chronic obstructive pulmonary disease (COPD) is a progressive lung disease.",
    "how do i reset my router password",
    "The quick brown fox jumps over the lazy dog.",
    "hello",
    "東京は日本の首都です。",
    "Привет, как дела? Это тест на русском языке.",
    "🚀🔥 launch day! 🎉",
    "café naïve façade coöperate résumé",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id;",
    "Error: ECONNREFUSED 127.0.0.1:5432 - is the postgres server running?",
    "The Federal Reserve raised interest rates by 25 basis points on Wednesday.",
    "mitochondria are the powerhouse of the cell",
    "1234567890 3.14159 2.71828 -42 1e10",
    "a",
    "العربية لغة جميلة",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "x" * 300,
    "best budget noise cancelling headphones for travel 2024",
    "Apple announced the new iPhone with a faster chip and a better camera.",
    "symptoms of vitamin d deficiency in adults",
]


def prose_paragraphs(min_words: int = 20) -> list[str]:
    """English paragraphs from pydoc_data.topics, in a fixed order, code blocks dropped."""
    out: list[str] = []
    for key in sorted(pydoc_data.topics.topics):
        for para in re.split(r"\n\s*\n", pydoc_data.topics.topics[key]):
            if para.startswith("   ") or "***" in para or "===" in para:
                continue
            text = " ".join(para.split())
            if len(text.split()) >= min_words:
                out.append(text)
    return out


def texts_with_tokens(tokenizer, target: int, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """``count`` prose texts of ``target`` WordPiece tokens each (without [CLS]/[SEP]), give or take one at the
    cut: consecutive stretches of the prose, cut at the character offset where token ``target`` ends."""
    text = " ".join(" ".join(prose_paragraphs()).split())
    whole = type(tokenizer).from_str(tokenizer.to_str())  # a copy without the truncation tokenizer.json may set
    whole.no_truncation()
    encoding = whole.encode(text, add_special_tokens=False)
    offsets = encoding.offsets
    if len(offsets) < target:
        raise ValueError(f"the corpus has only {len(offsets)} tokens, fewer than {target}")
    out: list[str] = []
    start = 0
    while len(out) < count:
        if start + target > len(offsets):
            start = 0
        out.append(text[offsets[start][0] : offsets[start + target - 1][1]])
        start += target
    return out


# The queries the engine tests rank with (tests/integration/test_engines.py, test_adapters.py).
ENGINE_QUERIES = [
    "how do I open a file for reading",
    "exceptions raised by a function",
    "unicode strings and bytes",
    "iterate over a dictionary",
    "lung disease",
    "thread safety",
]


# What the engine contract tests send (test_opensearch.py, test_elasticsearch.py): dotted terms, JSON-escaped
# characters, non-ASCII, a question.
CONNECTOR_TEXTS = [
    "chronic obstructive pulmonary disease",
    "e.g. the U.S. asthma guidelines",
    'an "inhaler" & <spacer> for children',
    "Lungenentzündung — pneumonia in the elderly",
    "how do vaccines train the immune system?",
]


def fidelity_texts() -> list[str]:
    """At least 50 varied texts: hand-written edge cases plus real prose of many lengths."""
    prose = prose_paragraphs()
    picked = [prose[i] for i in range(0, len(prose), max(1, len(prose) // 40))][:40]
    return HAND_WRITTEN + picked


def longest_texts(expander: Any, count: int, max_windows: int) -> list[str]:
    """``count`` different prose texts, each the longest run of words that still fits ``max_windows`` windows of
    ``expander``'s model (counted by the library's own windowing)."""
    words = " ".join(prose_paragraphs()).split()

    def windows(text: str) -> int:
        return int(expander._plan([text], False, False).counts[0])

    def longest(start: int) -> str:
        lo, hi = 1, 8000
        while lo < hi:  # the most words from ``start`` whose text needs at most max_windows windows
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if windows(" ".join(words[start : start + mid])) <= max_windows else (lo, mid - 1)
        return " ".join(words[start : start + lo])

    texts = [longest(i * 997) for i in range(count)]
    assert all(windows(t) == max_windows for t in texts) and len(set(texts)) == count
    return texts
