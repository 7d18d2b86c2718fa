"""What splade-expand says on stderr: one status line, redrawn, and one-line notes."""

from __future__ import annotations

import sys
import time


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def say(message: str) -> None:
    """One line on stderr about the run (what a resume redoes, say)."""
    print(f"splade-expand: {message}", file=sys.stderr)


class Progress:
    """One status line on stderr (docs, error records, docs/s, ETA by input bytes), redrawn at most 4 times a
    second. The counts include what earlier runs of a resumed run wrote; the rate and the ETA count only this
    run's documents and bytes."""

    def __init__(self, total_bytes: int, enabled: bool) -> None:
        self.total, self.enabled, self.start, self.shown = max(total_bytes, 1), enabled, time.monotonic(), 0.0
        self.docs = self.errors = self.done_bytes = 0
        self.earlier_docs = self.earlier_bytes = 0  # what earlier runs of a resumed run did
        self.files_done = self.files_with_errors = 0

    def file_done(self, errors: int) -> None:
        self.files_done += 1
        self.files_with_errors += errors > 0

    def summary(self) -> str:
        errors = plural(self.errors, "error record")
        if self.files_with_errors:
            errors += f" in {plural(self.files_with_errors, 'file')}"
        return f"{plural(self.docs, 'document')}, {errors}"

    def update(self, docs: int, errors: int, done_bytes: int, force: bool = False, earlier: bool = False) -> None:
        """Add ``docs`` and ``errors``; ``done_bytes``: input bytes finished so far; ``earlier``: these were done
        by an earlier run (a resume), so they count in the totals and not in this run's rate."""
        self.docs += docs
        self.errors += errors
        if earlier:
            self.earlier_docs += docs
            self.earlier_bytes += max(done_bytes - self.done_bytes, 0)
        self.done_bytes = done_bytes
        now = time.monotonic()
        if not self.enabled or (now - self.shown < 0.25 and not force):
            return
        self.shown = now
        elapsed = max(now - self.start, 1e-9)
        share = min(self.done_bytes / self.total, 1.0)
        this_run = self.done_bytes - self.earlier_bytes
        eta = f"{elapsed * (self.total - self.done_bytes) / this_run:.0f} s" if this_run > 0 else "?"
        bar = "#" * int(share * 30)
        sys.stderr.write(
            f"\r[{bar:<30}] {share:4.0%} {plural(self.docs, 'doc')}, {plural(self.errors, 'error record')}, "
            f"{(self.docs - self.earlier_docs) / elapsed:.0f} docs/s, ETA {eta} "
        )
        sys.stderr.flush()
