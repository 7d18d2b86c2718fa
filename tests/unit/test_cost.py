"""The cost table's arithmetic (scripts/cost.py) against hand computations."""

from __future__ import annotations

import pytest

from scripts.cost import (
    GB_SECOND,
    PER_MILLION_REQUESTS,
    PRICE_VARIABLES,
    Prices,
    assumptions,
    billed_seconds,
    per_million_calls,
    per_million_documents,
    per_thousand_inits,
    speedup,
)

PRICES = Prices.from_env({})


def test_published_prices_are_the_defaults() -> None:
    """The defaults are AWS's us-east-1 list prices: $0.0000133334 (arm64) and $0.0000166667 (x86_64) per
    GB-second, $0.20 per million requests."""
    assert (GB_SECOND, PER_MILLION_REQUESTS) == ({"arm64": 0.0000133334, "x86_64": 0.0000166667}, 0.20)
    assert PRICES.gb_second == GB_SECOND and PRICES.per_request == pytest.approx(2e-7)


def test_prices_are_overridden_by_their_variables() -> None:
    """Each price has its environment variable, and the table's source line names the ones that were set."""
    env = {PRICE_VARIABLES["arm64"]: "0.00001", PRICE_VARIABLES["requests"]: "0.25"}
    prices = Prices.from_env(env)
    assert prices.gb_second == {"arm64": 0.00001, "x86_64": 0.0000166667}
    assert prices.per_million_requests == 0.25
    assert prices.source.endswith("overridden by LAMBDA_PRICE_GB_SECOND_ARM64, LAMBDA_PRICE_PER_MILLION_REQUESTS")
    assert "$0.00001 (arm64)" in assumptions(prices) and "$0.25 per million" in assumptions(prices)


def test_speed_follows_the_vcpu_share() -> None:
    """Below 1,769 MB a function has memory/1,769 of a vCPU; above, one core plus the extra share times what a
    second thread gave (the share is capped at the 2 CPUs a function sees up to 3,008 MB)."""
    assert speedup(512, 0.9) == pytest.approx(512 / 1769)
    assert speedup(1769, 0.9) == 1.0
    assert speedup(3008, 0.8) == pytest.approx(1 + (3008 / 1769 - 1) * 0.8)  # 1.560...
    assert speedup(3008, 0.0) == 1.0
    assert speedup(10240, 1.0) == 2.0


def test_ingest_cost_by_hand() -> None:
    """100 docs/s on one core, arm64: below one vCPU the cost is flat, 1/100 s x 1,769/1,024 GB-s per document
    = 1.7275390625e-2 GB-s x $0.0000133334 = $2.30339e-7, plus $0.20 per million requests over 10,000 documents
    per invocation = $2e-11: $0.230359 per million documents at 512 and at 1,024 MB."""
    for memory in (512, 1024, 1769):
        assert per_million_documents(100, 0.5, memory, "arm64", PRICES) == pytest.approx(0.230359, abs=1e-6)
    # 3,008 MB x86_64 with a second thread worth +80%: speed 1 + 0.700396 x 0.8 = 1.560317, 1/156.0317 s x 2.9375 GB
    # x $0.0000166667 = $3.137725e-7 per document.
    assert per_million_documents(100, 0.8, 3008, "x86_64", PRICES) == pytest.approx(0.3137725 + 0.00002, abs=1e-6)
    assert per_million_documents(100, 0.8, 3008, "x86_64", PRICES, docs_per_invocation=1) == pytest.approx(
        0.3137725 + 0.2, abs=1e-6
    )


def test_http_calls_are_billed_in_whole_milliseconds() -> None:
    """A 1.2 ms call at 1,769 MB bills 2 ms: 0.002 s x 1.7275390625 GB x $0.0000133334 = $4.60678e-8, plus $2e-7 a
    request: $0.246068 per million. At 512 MB it runs 1.2 x 1,769/512 = 4.146 ms and bills 5 ms x 0.5 GB:
    $3.33335e-8 + $2e-7 = $0.233334 per million."""
    assert billed_seconds(0.0012) == 0.002 and billed_seconds(0.002) == 0.002 and billed_seconds(0.0020001) == 0.003
    assert per_million_calls(0.0012, 0.0, 1769, "arm64", PRICES) == pytest.approx(0.246068, abs=1e-6)
    assert per_million_calls(0.0012, 0.0, 512, "arm64", PRICES) == pytest.approx(0.233334, abs=1e-6)


def test_init_cost_per_thousand_cold_starts() -> None:
    """A 300 ms init on one core at 1,024 MB runs 300 x 1,769/1,024 = 518.26 ms, billed 519 ms x 1 GB x
    $0.0000166667 (x86_64) = $8.6500173e-6 a cold start: $0.0086500173 per 1,000, with no request charge."""
    assert per_thousand_inits(0.3, 1024, "x86_64", PRICES) == pytest.approx(0.0086500173, abs=1e-10)


def test_power_tuning_payloads_are_what_their_generator_writes() -> None:
    """events/power-tuning-*.json are scripts/power_tuning_events.py's output for the bundled model: 64 documents,
    one query, one 256-token document (the emulator test runs them against the API function's limits)."""
    from devkit import ROOT
    from scripts.power_tuning_events import payloads, render

    written = payloads()
    assert sorted(written) == sorted(p.name for p in (ROOT / "events").glob("power-tuning-*.json"))
    for name, payload in written.items():
        assert (ROOT / "events" / name).read_text() == render(payload), name
    assert len(written["power-tuning-batch.json"]["texts"]) == 64
