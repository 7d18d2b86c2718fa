"""Configuration from environment variables, read once, typed. Explicit arguments win over these.

Every variable is declared in ``template.yaml``; defaults here are what the template sets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_MODEL_DIR = Path(__file__).resolve().parent.parent / "model_assets"


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"environment variable {name}={value} must be {bound}")
    return value


def available_cpus() -> int:
    """CPUs this process may run on (Lambda gives vCPUs in proportion to memory)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    model_dir: Path = PACKAGE_MODEL_DIR
    threads: int = 0  # 0: every CPU available to the process
    window_tokens: int = 256
    max_windows: int = 64
    max_request_windows: int = 256  # HTTP/direct work budget: ~14 ms per window at 1 thread (make bench)
    tokens_per_run: int = 512  # padded tokens per ONNX run: 512-768 measured fastest (cache), RSS flat
    max_texts: int = 64
    max_text_chars: int = 20_000  # ~4,500 tokens: a full request (64 texts) stays well under the 30 s HTTP limit
    max_body_bytes: int = 6_000_000
    output_bucket: str = ""
    output_prefix: str = "vectors/"
    output_format: str = "indices"
    text_field: str = "text"
    id_field: str = "id"
    max_object_bytes: int = 200_000_000
    ingest_time_margin_ms: int = 10_000  # take no new object, and checkpoint the current one, below this
    ingest_queue_url: str = ""  # where checkpointed objects continue (the ingest queue); empty: no continuations
    allowed_origins: tuple[str, ...] = ()  # CORS origins for browsers; empty: CORS off
    s3_endpoint_url: str = ""  # an S3-compatible endpoint (MinIO, moto_server); empty: AWS S3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        fmt = env.get("OUTPUT_FORMAT", d.output_format).strip() or d.output_format
        if fmt not in ("indices", "terms", "both"):
            raise ValueError(f"environment variable OUTPUT_FORMAT={fmt!r} must be indices, terms or both")
        prefix = env.get("OUTPUT_PREFIX", d.output_prefix).strip()
        return cls(
            model_dir=Path(env.get("MODEL_DIR", "").strip() or d.model_dir),
            threads=_int(env, "ORT_THREADS", d.threads, 0, 64),
            window_tokens=_int(env, "WINDOW_TOKENS", d.window_tokens, 16, 512),
            max_windows=_int(env, "MAX_WINDOWS", d.max_windows, 1),
            max_request_windows=_int(env, "MAX_REQUEST_WINDOWS", d.max_request_windows, 1),
            tokens_per_run=_int(env, "TOKENS_PER_RUN", d.tokens_per_run, 256, 65536),
            max_texts=_int(env, "MAX_TEXTS", d.max_texts, 1),
            max_text_chars=_int(env, "MAX_TEXT_CHARS", d.max_text_chars, 1),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", d.max_body_bytes, 1024),
            output_bucket=env.get("OUTPUT_BUCKET", d.output_bucket).strip(),
            output_prefix=prefix if not prefix or prefix.endswith("/") else prefix + "/",
            output_format=fmt,
            text_field=env.get("TEXT_FIELD", d.text_field).strip() or d.text_field,
            id_field=env.get("ID_FIELD", d.id_field).strip() or d.id_field,
            max_object_bytes=_int(env, "MAX_OBJECT_BYTES", d.max_object_bytes, 1),
            ingest_time_margin_ms=_int(env, "INGEST_TIME_MARGIN_MS", d.ingest_time_margin_ms, 0),
            ingest_queue_url=env.get("INGEST_QUEUE_URL", d.ingest_queue_url).strip(),
            allowed_origins=tuple(o.strip() for o in env.get("ALLOWED_ORIGINS", "").split(",") if o.strip()),
            s3_endpoint_url=env.get("S3_ENDPOINT_URL", d.s3_endpoint_url).strip(),
        )
