"""The library's options as environment variables, for the programs built on it: the Lambda function
(``handler/config.py`` extends ``ExpanderSettings``) and ``splade-expand`` read the same names the same way.

The library itself never reads the environment: ``Expander`` takes explicit arguments (or ``defaults.py``);
a program calls ``ExpanderSettings.from_env().expander_options()`` and passes them on. Each field names its
variable, its bounds and what it means (``var``); an unset or blank variable keeps its default, and a malformed
one raises ValueError naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from . import defaults as lib

BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def var(
    env: str,
    default: Any,
    doc: str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    deployed: bool = True,
    blank: bool = False,
) -> Any:
    """A setting read from ``env``, in [lo, hi] when an integer. A blank value means the default unless ``blank``
    (then it is the value: a blank OUTPUT_PREFIX means no prefix). ``deployed=False``: the template does not set it
    (library and local use only)."""
    meta = {"env": env, "doc": doc, "lo": lo, "hi": hi, "deployed": deployed, "blank": blank}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ExpanderSettings:
    """The Expander's arguments as variables: what the function and splade-expand load the model with."""

    # fmt: off
    model_dir: Path = var("MODEL_DIR", lib.MODEL_DIR, "model.onnx and tokenizer.json", deployed=False)
    threads: int = var(
        "ORT_THREADS", 0, "ONNX Runtime threads; 0: every CPU available to the process", lo=0, hi=lib.MAX_THREADS)
    window_tokens: int = var(
        "WINDOW_TOKENS", lib.WINDOW_TOKENS, "tokens per model window, the framing ([CLS]/[SEP] or <s>/</s>) included",
        lo=lib.WINDOW_TOKENS_RANGE[0], hi=lib.WINDOW_TOKENS_RANGE[1])
    max_windows: int = var("MAX_WINDOWS", lib.MAX_WINDOWS, "windows one text may use (longer texts are refused)", lo=1)
    tokens_per_run: int = var(
        "TOKENS_PER_RUN", lib.TOKENS_PER_RUN, "padded tokens per ONNX run (a longer window runs alone)",
        lo=lib.TOKENS_PER_RUN_RANGE[0], hi=lib.TOKENS_PER_RUN_RANGE[1])
    # fmt: on

    def expander_options(self) -> dict[str, Any]:
        """The Expander arguments these settings give."""
        return {
            "model_dir": self.model_dir, "threads": self.threads or None, "window_tokens": self.window_tokens,
            "max_windows": self.max_windows, "tokens_per_run": self.tokens_per_run,
        }  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Settings from ``env`` (default ``os.environ``), then ``checked``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name not in env:
                continue
            raw = env[name].strip()
            if raw or f.metadata["blank"]:
                values[f.name] = parse(f.metadata, f.default, raw)
        return cls(**values).checked()

    def checked(self) -> Self:
        """The rules between fields (a subclass adds its own); the settings, normalised."""
        return self

    @classmethod
    def variables(cls, deployed_only: bool = False) -> dict[str, str]:
        """Variable name -> default as the environment spells it (what the template sets)."""
        return {f.metadata["env"]: spell(f.default) for f in fields(cls) if f.metadata["deployed"] or not deployed_only}


def parse(meta: Mapping[str, Any], default: Any, raw: str) -> Any:
    """``raw`` as the type of ``default``, in its bounds; ValueError naming the variable."""
    name = meta["env"]
    if isinstance(default, bool):
        if raw.lower() not in BOOLEANS:
            raise ValueError(f"environment variable {name}={raw!r} must be true or false")
        return BOOLEANS[raw.lower()]
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"environment variable {name}={raw!r} is not a number") from None
    if not isinstance(default, int):
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return Path(raw) if isinstance(default, Path) else raw
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None
    lo, hi = meta["lo"], meta["hi"]
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"environment variable {name}={value} must be {bound}")
    return value


def spell(value: Any) -> str:
    """A default as the environment spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(value) if isinstance(value, tuple) else str(value)
