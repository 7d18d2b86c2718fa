"""An HTTP API as API Gateway routes it, from the translated template: route selection by API Gateway's priority,
each route's authorization, and CORS preflights (the service-side check of the API that devkit/services.py makes
for the other resources; tests/unit/test_services.py uses it)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .deploy import Deployed


@dataclass(frozen=True)
class Route:
    """One route of an HTTP API as API Gateway holds it."""

    key: str  # "POST /v1/expand", "ANY /{proxy+}", "$default"
    authorization: str  # "AWS_IAM" or "NONE"
    target: str = ""  # the integration's function: its logical id (ApiFunctionAliaslive, PreflightFunction)


@dataclass(frozen=True)
class Answer:
    """What API Gateway does with one request: who answers and with what status (``invoke``: the function)."""

    route: str | None
    by: str  # "invoke", "gateway"
    status: int | None = None  # set when API Gateway answers itself
    target: str = ""  # the function invoked


class Routes:
    """An HTTP API's route selection, authorization and CORS preflight, from the translated template.

    API Gateway developer guide, "Working with routes for HTTP APIs": the most specific match wins: a full
    match of method and path first, then routes with greedy path variables (``{proxy+}``), the longest prefix
    first, an exact method before ``ANY``; ``$default`` catches every request no route matched. Each route's
    authorization applies before anything else ("Controlling access to HTTP APIs with IAM": an unsigned request
    to an AWS_IAM route gets 403). "Configuring CORS for an HTTP API": with a CORS configuration API Gateway
    answers a preflight itself only where no route matches it; ``$default`` matches every OPTIONS request (and
    applies its authorization), so the guide adds an ``OPTIONS /{proxy+}`` route without authorization, whose
    integration then receives the preflight (serverless-application-model#1603: a route that matches OPTIONS
    sends preflights to the function); API Gateway adds its configured CORS headers to the function's answer.
    """

    def __init__(self, deployed: Deployed, api: str = "HttpApi") -> None:
        """The routes of the API's OpenAPI body (SAM writes every HttpApi event there; ``$default`` is the path
        SAM marks ``isDefaultRoute``) and of any AWS::ApiGatewayV2::Route resources attached to it."""
        props = deployed.resources[api]["Properties"]
        body = props.get("Body", {})
        self.routes = []
        for path, methods in body.get("paths", {}).items():
            for method, operation in methods.items():
                auth = "AWS_IAM" if any("AWS_IAM" in s for s in operation.get("security", [])) else "NONE"
                uri = str(operation.get("x-amazon-apigateway-integration", {}).get("uri", ""))
                target = re.sub(r"\.Arn$", "", m.group(1)) if (m := re.search(r"<([^>]+)>", uri)) else uri
                if operation.get("isDefaultRoute"):
                    self.routes.append(Route("$default", auth, target))
                else:
                    verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                    self.routes.append(Route(f"{verb} {path}", auth, target))
        for resource in deployed.of_type("AWS::ApiGatewayV2::Route").values():
            route = resource["Properties"]
            if _ref(route["ApiId"]) == _ref(deployed.physical(api)):
                self.routes.append(Route(route["RouteKey"], route.get("AuthorizationType", "NONE")))
        cors = body.get("x-amazon-apigateway-cors") or props.get("CorsConfiguration")
        self.cors: dict[str, Any] | None = cors or None

    def select(self, method: str, path: str) -> Route | None:
        """The route API Gateway picks for the request (None: no route, API Gateway's 404)."""
        exact = [r for r in self.routes if r.key in (f"{method} {path}", f"ANY {path}")]
        if exact:
            return min(exact, key=lambda r: r.key.startswith("ANY "))
        greedy = []
        for route in self.routes:
            if route.key == "$default":
                continue
            route_method, route_path = route.key.split(" ", 1)
            if route_method not in (method, "ANY") or not route_path.endswith("/{proxy+}"):
                continue
            prefix = route_path[: -len("{proxy+}")]
            if path.startswith(prefix) and len(path) > len(prefix):
                greedy.append((len(prefix), route_method != "ANY", route))
        if greedy:
            return max(greedy, key=lambda g: (g[0], g[1]))[2]
        return next((r for r in self.routes if r.key == "$default"), None)

    def request(self, method: str, path: str, headers: dict[str, str], signed: bool = False) -> Answer:
        """What happens to one request (``signed``: it carries a valid SigV4 signature)."""
        route = self.select(method, path)
        if route is None:
            lower = {k.lower() for k in headers}
            preflight = method == "OPTIONS" and {"origin", "access-control-request-method"} <= lower
            return Answer(None, "gateway", 204 if preflight and self.cors is not None else 404)
        if route.authorization == "AWS_IAM" and not signed:
            return Answer(route.key, "gateway", 403)
        return Answer(route.key, "invoke", target=route.target)


def _ref(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
