"""A text's windows: how many tokens fit, where each window starts, which windows run together.

Texts are cut into windows of at most ``window_tokens`` (the model's framing tokens, [CLS]/[SEP] or <s>/</s>,
included); windows are sorted by length and packed into runs of at most ``tokens_per_run`` padded tokens (a longer
window runs alone), so padding is small, the projection's int32 accumulators stay in cache and peak memory is
bounded whatever the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import PayloadTooLargeError

# A text longer than max_windows x window x this many characters cannot fit and is refused before it is
# tokenized (tokenizing 4 MB of text takes ~4 s and ~650 MB). English averages ~4.5 characters per token.
CHARS_PER_TOKEN_BOUND = 16


def max_text_chars(max_windows: int | None, window_tokens: int) -> int | None:
    """The longest text worth tokenizing for ``max_windows`` windows (None: unbounded): a token spans at most
    CHARS_PER_TOKEN_BOUND characters."""
    return None if max_windows is None else max_windows * (window_tokens - 2) * CHARS_PER_TOKEN_BOUND


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


@dataclass
class Plan:
    """One expand call's windows: (text index, framed ids) each, the characters each covers (chunks),
    and per text its window count and the tokens its windows cover."""

    counts: list[int]
    covered: list[int]
    windows: list[tuple[int, list[int]]] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Windowing:
    """How one model cuts texts: its window (framing included), the content tokens of a window, the overlap,
    the windows a text may use, and the model's framing (``frame``: content ids -> framed ids)."""

    window_tokens: int
    content: int
    overlap: int
    max_windows: int | None
    frame: Callable[[list[int]], list[int]]

    def plan(self, encodings: Sequence[Any], one_window: bool, chunks: bool) -> Plan:
        """Every text's windows of framed ids (MAX_WINDOWS checked per text), and their spans with ``chunks``."""
        content = self.content
        plan = Plan(counts=[0] * len(encodings), covered=[0] * len(encodings))
        for i, enc in enumerate(encodings):
            ids = enc.ids
            n = len(ids)
            if n == 0:
                continue
            starts, length = ([0], content) if n <= content or one_window else window_starts(n, content, self.overlap)
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
            plan.windows.extend((i, self.frame(ids[s : s + length])) for s in starts)
            if chunks:
                offsets = enc.offsets
                plan.spans.extend((offsets[s][0], offsets[min(s + length, n) - 1][1]) for s in starts)
        return plan


def runs(
    windows: list[tuple[int, list[int]]], tokens_per_run: int, pad: int
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """(indices of the run's windows, padded ids, attention mask) for length-sorted runs within the token budget."""
    order = sorted(range(len(windows)), key=lambda k: len(windows[k][1]))
    start = 0
    while start < len(order):
        end = start + 1
        # Sorted ascending: the run's padded size is (count) x (length of its last window).
        while end < len(order) and (end - start + 1) * len(windows[order[end]][1]) <= tokens_per_run:
            end += 1
        run = order[start:end]
        width = len(windows[run[-1]][1])
        ids = np.full((len(run), width), pad, dtype=np.int64)
        mask = np.zeros((len(run), width), dtype=np.int64)
        for row, (_, toks) in enumerate(windows[k] for k in run):
            ids[row, : len(toks)] = toks
            mask[row, : len(toks)] = 1
        yield run, ids, mask
        start = end
