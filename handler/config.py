"""Configuration: every environment variable of the function, declared once here (the library's own five,
MODEL_DIR, ORT_THREADS, WINDOW_TOKENS, MAX_WINDOWS and TOKENS_PER_RUN, in splade_expander/settings.py, which
splade-expand reads too), read once, typed.

Each ``Settings`` field names its variable, its bounds and what it means. The template's function environment,
``local-env.json``, the local runtime emulator's environment and the test environment are derived from these
declarations or checked against them (tests/unit/test_config.py). Explicit arguments win over the environment.
Library variables (``POWERTOOLS_*``, ``AWS_*``) belong to their libraries and are not declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from splade_expander.formats import FORMATS as OUTPUT_FORMATS
from splade_expander.settings import ExpanderSettings, var


@dataclass(frozen=True)
class Settings(ExpanderSettings):
    """The function's variables: the library's (ExpanderSettings), then the HTTP limits and ingest's."""

    # fmt: off
    max_request_windows: int = var(
        "MAX_REQUEST_WINDOWS", 0, "HTTP/direct work budget in windows; 0: the model's (its manifest)", lo=0)
    max_texts: int = var("MAX_TEXTS", 64, "texts per request", lo=1)
    max_text_chars: int = var(
        "MAX_TEXT_CHARS", 20_000, "characters per text: a full request stays well under the 30 s HTTP limit", lo=1)
    max_body_bytes: int = var("MAX_BODY_BYTES", 6_000_000, "HTTP request body bytes", lo=1024)
    output_bucket: str = var("OUTPUT_BUCKET", "", "ingest: the bucket vectors are written to")
    output_prefix: str = var("OUTPUT_PREFIX", "vectors/", "ingest: key prefix of the outputs (a trailing / is added)",
        blank=True)
    output_format: str = var("OUTPUT_FORMAT", "indices", "ingest: indices, terms or both")
    text_field: str = var("TEXT_FIELD", "text", "ingest: the JSON Lines field holding the text")
    id_field: str = var("ID_FIELD", "id", "ingest: the JSON Lines field holding the document id")
    max_object_bytes: int = var("MAX_OBJECT_BYTES", 200_000_000, "ingest: object bytes (and decompressed bytes)", lo=1)
    ingest_time_margin_ms: int = var(
        "INGEST_TIME_MARGIN_MS", 10_000, "ingest: take no new object, and checkpoint the current one, below this", lo=0)
    max_object_runs: int = var(
        "MAX_OBJECT_RUNS", 200, "ingest: runs one object may take (continuations included) before it is failed", lo=1)
    ingest_queue_url: str = var(
        "INGEST_QUEUE_URL", "", "ingest: where checkpointed objects continue; empty: no continuations")
    api_key_secret_id: str = var(
        "API_KEY_SECRET_ID", "", "ApiAuth=apikey: the secret (name or ARN) holding the API key; empty: no key")
    allowed_origins: tuple[str, ...] = var("ALLOWED_ORIGINS", (), "CORS origins (comma-separated); empty: CORS off")
    s3_endpoint_url: str = var("S3_ENDPOINT_URL", "", "an S3-compatible endpoint (MinIO, moto_server); empty: AWS")
    prune_type: str = var("PRUNE_TYPE", "", "ingest: top_k, max_ratio, abs_value or alpha_mass; empty: no pruning")
    prune_value: float = var("PRUNE_VALUE", 0.0, "ingest: the PRUNE_TYPE's value (OpenSearch's ranges)")
    output_chunks: bool = var(
        "OUTPUT_CHUNKS", False, "ingest: also write each window's vector and span to <prefix><key>.chunks.jsonl")
    output_df: bool = var(
        "OUTPUT_DF", False, "ingest: also write the object's document frequencies to <prefix><key>.df.json (make idf)")
    # fmt: on

    def checked(self) -> Settings:
        """OUTPUT_FORMAT and PRUNE_TYPE / PRUNE_VALUE checked (a bad value fails the init phase, naming it); a
        trailing / added to OUTPUT_PREFIX."""
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"environment variable OUTPUT_FORMAT={self.output_format!r} must be indices, terms or both"
            )
        if self.prune_type:
            from splade_expander.prune import Prune  # numpy

            try:
                Prune.parse({"type": self.prune_type, "value": self.prune_value})
            except ValueError as exc:
                raise ValueError(f"environment variables PRUNE_TYPE / PRUNE_VALUE: {exc}") from None
        prefix = self.output_prefix
        return replace(self, output_prefix=prefix + "/") if prefix and not prefix.endswith("/") else self

    @property
    def prune(self) -> Any:
        """PRUNE_TYPE / PRUNE_VALUE as a ``prune.Prune`` (checked by from_env), or None when no pruning is set."""
        if not self.prune_type:
            return None
        from splade_expander.prune import Prune

        return Prune.parse({"type": self.prune_type, "value": self.prune_value})
