"""The CORS preflight function (template PreflightFunction, only with AllowedOrigins): 204 and nothing else.

API Gateway routes browser preflights here through the unauthenticated ``OPTIONS /{proxy+}`` route and adds the
configured CORS headers itself. It ships in the same artifact as the other functions but imports nothing of it:
no model loads, so its cold start is the runtime's own.
"""

from __future__ import annotations

from typing import Any


def handler(event: Any, context: Any) -> dict[str, Any]:
    return {"statusCode": 204}
