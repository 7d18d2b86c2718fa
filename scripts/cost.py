"""What work costs on Lambda: dollars per million documents or queries, from speeds measured on this host.

The arithmetic only; ``scripts/bench_cost.py`` measures the speeds and prints the table (``make bench``). The model
(each assumption is printed next to the table: ``assumptions``):
- Lambda bills duration per 1 ms at a price per GB-second (by architecture) and a price per request.
- CPU is proportional to memory: 1,769 MB is one full vCPU (AWS Lambda developer guide, "Memory and computing
  power"). Below it, the function runs at ``memory / 1,769`` of one core's speed; above it, the extra share is
  used only as well as a second thread helps, measured in the same run.
- One core of this host stands in for one Lambda vCPU.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

ARCHES = ("arm64", "x86_64")
MEMORY_SIZES = (512, 1024, 1769, 3008)  # MB: the table's columns
ONE_VCPU_MB = 1769  # the memory size at which a function has the equivalent of one full vCPU
LAMBDA_CPUS = 2  # CPUs a function sees up to 3,008 MB; ORT_THREADS=0 (the template's default) uses them all
SQS_BATCH_OBJECTS = 10  # the ingest queue's BatchSize in template.yaml: one invocation per 10 S3 objects
DOCS_PER_OBJECT = 1_000  # an assumption: the request charge of ingest is shared by this many documents per object

PRICES_SOURCE = (
    "AWS Lambda pricing, https://aws.amazon.com/lambda/pricing/ (us-east-1 list prices, first duration tier; "
    "recorded 2026-12-05)"
)
# $ per GB-second of duration, by architecture, and $ per request; override with the environment variables below.
GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
PER_MILLION_REQUESTS = 0.20
PRICE_VARIABLES = {
    "arm64": "LAMBDA_PRICE_GB_SECOND_ARM64",
    "x86_64": "LAMBDA_PRICE_GB_SECOND_X86_64",
    "requests": "LAMBDA_PRICE_PER_MILLION_REQUESTS",
}


@dataclass(frozen=True)
class Prices:
    """Lambda's duration prices ($ per GB-second, by architecture) and request price ($ per million)."""

    gb_second: Mapping[str, float]
    per_million_requests: float
    source: str = PRICES_SOURCE

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Prices:
        """The published prices, each replaced by its PRICE_VARIABLES variable when that is set."""
        gb_second = {arch: float(env.get(PRICE_VARIABLES[arch], GB_SECOND[arch])) for arch in ARCHES}
        requests = float(env.get(PRICE_VARIABLES["requests"], PER_MILLION_REQUESTS))
        overridden = sorted(name for name in PRICE_VARIABLES.values() if name in env)
        source = PRICES_SOURCE + (f"; overridden by {', '.join(overridden)}" if overridden else "")
        return cls(gb_second, requests, source)

    @property
    def per_request(self) -> float:
        return self.per_million_requests / 1e6


def speedup(memory_mb: int, second_thread_gain: float) -> float:
    """How many times one core's speed the function runs at with ``memory_mb``.

    Below 1,769 MB, the share of one vCPU; above it, one core plus the extra share (at most LAMBDA_CPUS - 1) times
    ``second_thread_gain``, what a second thread added to one thread's speed (0: nothing, 1: twice as fast)."""
    share = memory_mb / ONE_VCPU_MB
    if share <= 1:
        return share
    return 1 + (min(share, LAMBDA_CPUS) - 1) * min(max(second_thread_gain, 0.0), 1.0)


def duration_cost(seconds: float, memory_mb: int, arch: str, prices: Prices) -> float:
    """Dollars for ``seconds`` of billed duration at ``memory_mb`` (no rounding, no request charge)."""
    return seconds * memory_mb / 1024 * prices.gb_second[arch]


def billed_seconds(seconds: float) -> float:
    """Lambda bills duration in whole milliseconds, rounded up."""
    return math.ceil(round(seconds * 1000, 9)) / 1000


def per_million_documents(
    docs_per_second: float, second_thread_gain: float, memory_mb: int, arch: str, prices: Prices, *,
    docs_per_invocation: int = SQS_BATCH_OBJECTS * DOCS_PER_OBJECT,
) -> float:  # fmt: skip
    """Dollars per million ingested documents: ``docs_per_second`` is one core's speed; invocations are long, so
    the 1 ms rounding is left out and the request charge is shared by ``docs_per_invocation`` documents."""
    seconds = 1 / (docs_per_second * speedup(memory_mb, second_thread_gain))
    return (duration_cost(seconds, memory_mb, arch, prices) + prices.per_request / docs_per_invocation) * 1e6


def per_million_calls(
    seconds_one_core: float, second_thread_gain: float, memory_mb: int, arch: str, prices: Prices
) -> float:
    """Dollars per million HTTP calls that each take ``seconds_one_core`` on one core: the duration rounded up to
    whole milliseconds, and one request charge per call."""
    seconds = billed_seconds(seconds_one_core / speedup(memory_mb, second_thread_gain))
    return (duration_cost(seconds, memory_mb, arch, prices) + prices.per_request) * 1e6


def per_thousand_inits(init_seconds_one_core: float, memory_mb: int, arch: str, prices: Prices) -> float:
    """Dollars per 1,000 cold starts: the init phase billed once per execution environment, run at the same
    share of a core as an invocation (one thread: imports and model load are serial)."""
    seconds = billed_seconds(init_seconds_one_core / speedup(memory_mb, 0.0))
    return duration_cost(seconds, memory_mb, arch, prices) * 1e3


def _plain(price: float) -> str:
    return f"{price:.12f}".rstrip("0")


def assumptions(prices: Prices) -> str:
    """The assumptions behind the table, with the prices it used."""
    return f"""\
- **Speed**: this host's single-core speed stands in for one Lambda vCPU; arm64 and x86_64 are priced at the
  same speed (measure your own with Power Tuning, docs/deploy.md).
- **vCPU share**: CPU is proportional to memory, one full vCPU at {ONE_VCPU_MB:,} MB. Below it, work runs at
  memory / {ONE_VCPU_MB:,} of one core, so CPU-bound cost is flat. Lambda enforces the share as a CPU quota per
  scheduling period, so a call shorter than one period can run at full speed: below {ONE_VCPU_MB:,} MB the query
  rows (a few ms) are an upper bound.
- **Threads**: the function runs ONNX Runtime with ORT_THREADS=0, every CPU it sees ({LAMBDA_CPUS} up to 3,008 MB).
  Above {ONE_VCPU_MB:,} MB the extra share helps only as much as a second thread helped on this host, measured
  in the same run for each row (the "2nd thread" column).
- **Requests**: ingest pays one request per SQS batch ({SQS_BATCH_OBJECTS} objects, assumed {DOCS_PER_OBJECT:,}
  documents each); HTTP pays one request per call, duration rounded up to whole ms. API Gateway's own charge
  (HTTP API, per million requests) is not included; a Function URL has none. S3 requests and transfer are not
  included.
- **Init**: billed once per execution environment (cold start), shown per 1,000 cold starts: the measured init
  at one core, scaled by the vCPU share like an invocation. How many cold starts you pay depends on traffic.
- **Prices**: ${_plain(prices.gb_second["arm64"])} (arm64) and ${_plain(prices.gb_second["x86_64"])} (x86_64) per
  GB-second, ${prices.per_million_requests:.2f} per million requests: {prices.source}. Override with
  {", ".join(PRICE_VARIABLES.values())}.
"""
