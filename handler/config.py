"""Configuration: every environment variable of ours, declared once here, read once, typed.

Each ``Settings`` field names its variable, its bounds and what it means. The template's function environment,
``local-env.json``, the local runtime emulator's environment and the test environment are derived from these
declarations or checked against them (tests/unit/test_config.py). Explicit arguments win over the environment.
Library variables (``POWERTOOLS_*``, ``AWS_*``) belong to their libraries and are not declared here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import defaults as lib
from .defaults import MODEL_DIR as PACKAGE_MODEL_DIR
from .formats import FORMATS as OUTPUT_FORMATS

BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _var(
    env: str, default: Any, doc: str, *, lo: int | None = None, hi: int | None = None, deployed: bool = True
) -> Any:
    """A setting read from ``env``, in [lo, hi] when an integer. A blank value means the default (a blank
    OUTPUT_PREFIX means no prefix). ``deployed=False``: the template does
    not set it (library and local use only)."""
    meta = {"env": env, "doc": doc, "lo": lo, "hi": hi, "deployed": deployed}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    # fmt: off
    model_dir: Path = _var("MODEL_DIR", PACKAGE_MODEL_DIR, "model.onnx and tokenizer.json", deployed=False)
    threads: int = _var(
        "ORT_THREADS", 0, "ONNX Runtime threads; 0: every CPU available to the process", lo=0, hi=lib.MAX_THREADS)
    window_tokens: int = _var(
        "WINDOW_TOKENS", lib.WINDOW_TOKENS, "tokens per model window, the framing ([CLS]/[SEP] or <s>/</s>) included",
        lo=lib.WINDOW_TOKENS_RANGE[0], hi=lib.WINDOW_TOKENS_RANGE[1])
    max_windows: int = _var("MAX_WINDOWS", lib.MAX_WINDOWS, "windows one text may use (longer texts are refused)", lo=1)
    max_request_windows: int = _var(
        "MAX_REQUEST_WINDOWS", 0, "HTTP/direct work budget in windows; 0: the model's (its manifest)", lo=0)
    tokens_per_run: int = _var(
        "TOKENS_PER_RUN", lib.TOKENS_PER_RUN, "padded tokens per ONNX run (a longer window runs alone)",
        lo=lib.TOKENS_PER_RUN_RANGE[0], hi=lib.TOKENS_PER_RUN_RANGE[1])
    max_texts: int = _var("MAX_TEXTS", 64, "texts per request", lo=1)
    max_text_chars: int = _var(
        "MAX_TEXT_CHARS", 20_000, "characters per text: a full request stays well under the 30 s HTTP limit", lo=1)
    max_body_bytes: int = _var("MAX_BODY_BYTES", 6_000_000, "HTTP request body bytes", lo=1024)
    output_bucket: str = _var("OUTPUT_BUCKET", "", "ingest: the bucket vectors are written to")
    output_prefix: str = _var("OUTPUT_PREFIX", "vectors/", "ingest: key prefix of the outputs (a trailing / is added)")
    output_format: str = _var("OUTPUT_FORMAT", "indices", "ingest: indices, terms or both")
    text_field: str = _var("TEXT_FIELD", "text", "ingest: the JSON Lines field holding the text")
    id_field: str = _var("ID_FIELD", "id", "ingest: the JSON Lines field holding the document id")
    max_object_bytes: int = _var("MAX_OBJECT_BYTES", 200_000_000, "ingest: object bytes (and decompressed bytes)", lo=1)
    ingest_time_margin_ms: int = _var(
        "INGEST_TIME_MARGIN_MS", 10_000, "ingest: take no new object, and checkpoint the current one, below this", lo=0)
    max_object_runs: int = _var(
        "MAX_OBJECT_RUNS", 200, "ingest: runs one object may take (continuations included) before it is failed", lo=1)
    ingest_queue_url: str = _var(
        "INGEST_QUEUE_URL", "", "ingest: where checkpointed objects continue; empty: no continuations")
    allowed_origins: tuple[str, ...] = _var("ALLOWED_ORIGINS", (), "CORS origins (comma-separated); empty: CORS off")
    s3_endpoint_url: str = _var("S3_ENDPOINT_URL", "", "an S3-compatible endpoint (MinIO, moto_server); empty: AWS")
    prune_type: str = _var("PRUNE_TYPE", "", "ingest: top_k, max_ratio, abs_value or alpha_mass; empty: no pruning")
    prune_value: float = _var("PRUNE_VALUE", 0.0, "ingest: the PRUNE_TYPE's value (OpenSearch's ranges)")
    output_chunks: bool = _var(
        "OUTPUT_CHUNKS", False, "ingest: also write each window's vector and span to <prefix><key>.chunks.jsonl")
    output_df: bool = _var(
        "OUTPUT_DF", False, "ingest: also write the object's document frequencies to <prefix><key>.df.json (make idf)")
    # fmt: on

    def expander_options(self) -> dict[str, Any]:
        """The Expander arguments these settings give: the Lambda runtime and splade-expand build it with them
        (the library itself never reads the environment)."""
        return {
            "model_dir": self.model_dir, "threads": self.threads or None, "window_tokens": self.window_tokens,
            "max_windows": self.max_windows, "tokens_per_run": self.tokens_per_run,
        }  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default ``os.environ``); an unset or blank variable keeps its default
        (a blank OUTPUT_PREFIX is no prefix).
        A malformed value raises ValueError naming the variable (in Lambda: the init phase fails loudly)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name not in env:
                continue
            raw = env[name].strip()
            if raw or (f.name == "output_prefix"):
                values[f.name] = _parse(f.metadata, f.default, raw)
        settings = cls(**values)
        if settings.output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"environment variable OUTPUT_FORMAT={settings.output_format!r} must be indices, terms or both"
            )
        if settings.prune_type:
            from .prune import Prune  # numpy; checked here so a bad value fails the init phase, naming it

            try:
                Prune.parse({"type": settings.prune_type, "value": settings.prune_value})
            except ValueError as exc:
                raise ValueError(f"environment variables PRUNE_TYPE / PRUNE_VALUE: {exc}") from None
        prefix = settings.output_prefix
        if prefix and not prefix.endswith("/"):
            settings = replace(settings, output_prefix=prefix + "/")
        return settings

    @property
    def prune(self) -> Any:
        """PRUNE_TYPE / PRUNE_VALUE as a ``prune.Prune`` (checked by from_env), or None when no pruning is set."""
        if not self.prune_type:
            return None
        from .prune import Prune

        return Prune.parse({"type": self.prune_type, "value": self.prune_value})

    @classmethod
    def variables(cls, deployed_only: bool = False) -> dict[str, str]:
        """Variable name -> default as the environment spells it (what the template sets)."""
        return {
            f.metadata["env"]: _spell(f.default) for f in fields(cls) if f.metadata["deployed"] or not deployed_only
        }


def _parse(meta: Mapping[str, Any], default: Any, raw: str) -> Any:
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


def _spell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(value) if isinstance(value, tuple) else str(value)
