"""What Elasticsearch's ``_inference`` ``custom`` service does with a ``sparse_embedding`` endpoint, written from its
source (no Elasticsearch server can run on these machines). elastic/elasticsearch, files and the stored commits read:

- ``x-pack/plugin/inference/.../services/custom/CustomService.java`` @ 0128e30676c6 (``doChunkedInfer``: inputs
  cut into batches of ``batch_size`` by EmbeddingRequestChunker; ``doInfer``: one call).
- ``.../custom/CustomRequestManager.java`` @ 0128e30676c6: embeddings inputs -> ``EmbeddingParameters``.
- ``.../custom/request/RequestParameters.java`` @ 233bf93ebda2: ``${input}`` = the texts as JSON (``toJson``).
- ``.../custom/request/EmbeddingParameters.java`` @ 405784b256f0: ``${input_type}`` = JSON of the translation of
  the request's input type when the translation has it, else of ``input_type.default``.
- ``server/.../inference/InputType.java`` @ 0128e30676c6: a translation may name only ingest, search,
  classification and clustering (``validateInputTypeTranslationValues``); Elasticsearch's own calls
  (semantic_text ingest, semantic and sparse_vector queries) use INTERNAL_INGEST / INTERNAL_SEARCH, which no
  translation can name, so they get the default.
- ``.../custom/request/CustomRequest.java`` @ 015db297b1f1: URL and headers filled from the secret and task
  parameters as plain strings, the request body from the same as JSON plus the request parameters; each through
  ``common/ValidatingSubstitutor.java`` @ 303f1c6a6301 (commons-text ``${``/``}``, then any ``${...}`` left is an
  error); ``Content-Type: application/json`` unless a header replaces it.
- ``.../custom/response/SparseEmbeddingResponseParser.java`` @ 0389ce6ed0f1 with ``common/MapPathExtractor.java``
  @ 933f8da8c64a: ``token_path`` and ``weight_path`` (``$``, ``.field``, ``[*]``; inner lists kept) give two lists
  of equal length, each entry two equal-length lists; a token becomes ``token.toString()``, a weight
  ``Number.floatValue()`` (``BaseCustomResponseParser.toFloat`` @ 3df0f7098ee7; not a number: refused).
- ``.../custom/CustomResponseHandler.java`` @ 189edba40130: a status outside [200, 300) is an error (429 retried).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .enginecalls import Call

TRANSLATABLE = ("ingest", "search", "classification", "clustering")
INPUT_TYPES = (*TRANSLATABLE, "internal_ingest", "internal_search", "unspecified")
DEFAULT_BATCH_SIZE = 10
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


class InferenceError(ValueError):
    """What the custom service would refuse or report (the message says which rule)."""


def _replace(source: str, params: dict[str, str], field: str) -> str:
    """``ValidatingSubstitutor.replace``."""
    out = _PLACEHOLDER.sub(lambda m: params.get(m.group(1), m.group(0)), source)
    left = re.search(r"\$\{.*?\}", out)
    if left:
        raise InferenceError(f"Found placeholder [{left.group()}] in field [{field}] after replacement call")
    return out


def _input_type(settings: dict[str, Any], input_type: str | None) -> str:
    translator = settings.get("input_type", {})
    translation = translator.get("translation", {})
    for key, value in translation.items():
        if key not in TRANSLATABLE:
            raise InferenceError(f"Invalid input type translation for key: [{key}], is not a valid value.")
        if not isinstance(value, str) or not value:
            raise InferenceError(f"Input type translation value for key [{key}] must be a String, not empty")
    if input_type is not None and input_type in translation:
        return str(translation[input_type])
    return str(translator.get("default", ""))


def batches(endpoint: dict[str, Any], texts: list[str]) -> list[list[str]]:
    """EmbeddingRequestChunker by ``batch_size`` (each text one chunk here: texts shorter than its chunking)."""
    size = endpoint["service_settings"].get("batch_size", DEFAULT_BATCH_SIZE)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise InferenceError(f"batch_size must be a positive integer, got {size!r}")
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def request(endpoint: dict[str, Any], texts: list[str], input_type: str | None) -> Call:
    """``CustomRequest`` for one batch."""
    if input_type is not None and input_type not in INPUT_TYPES:
        raise InferenceError(f"unknown input type {input_type}")
    settings = endpoint["service_settings"]
    given = {**settings.get("secret_parameters", {}), **endpoint.get("task_settings", {}).get("parameters", {})}
    strings = {k: v for k, v in given.items() if isinstance(v, str)}
    jsons = {k: json.dumps(v, ensure_ascii=False) for k, v in given.items()}
    jsons["input"] = json.dumps(texts, ensure_ascii=False)
    jsons["input_type"] = json.dumps(_input_type(settings, input_type), ensure_ascii=False)
    url = _replace(settings["url"], strings, "url")
    headers = {"Content-Type": "application/json"}
    for name, value in settings.get("headers", {}).items():
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        headers[name] = _replace(value, strings, f"header.{name}")
    return Call(texts, url, headers, _replace(settings["request"], jsons, "request"))


def extract(data: Any, path: str) -> Any:
    """``MapPathExtractor.extract``: ``$`` then ``.field`` and ``[*]`` steps, inner lists kept."""
    if not path.strip().startswith("$"):
        raise InferenceError(f"Path [{path}] must start with a dollar sign ($)")
    return _navigate(data, path.strip()[1:])


def _navigate(current: Any, rest: str) -> Any:
    if current is None or not rest:
        return current
    field = re.fullmatch(r"\.([^.\[]+)(.*)", rest, re.S)
    if field:
        if not isinstance(current, dict):
            raise InferenceError(f"Current path [{rest}] matched the dot field pattern but the object is not a map")
        if current.get(field.group(1)) is None:
            raise InferenceError(f"Unable to find field [{field.group(1)}] in map")
        return _navigate(current[field.group(1)], field.group(2))
    wildcard = re.fullmatch(r"\[\*\](.*)", rest, re.S)
    if wildcard:
        if not isinstance(current, list):
            raise InferenceError(f"Current path [{rest}] matched the array field pattern but the object is not a list")
        return [r for r in (_navigate(item, wildcard.group(1)) for item in current) if r is not None]
    raise InferenceError(f"Invalid path received [{rest}], unable to extract a field name.")


def _java_string(token: Any) -> str:
    if isinstance(token, bool):
        return "true" if token else "false"
    return str(token)  # Integer/Long.toString; strings as they are


def sparse_embeddings(endpoint: dict[str, Any], response_text: str) -> list[dict[str, float]]:
    """``SparseEmbeddingResponseParser.transform`` of one response: one token -> float32 weight map per text."""
    data = json.loads(response_text)
    if not isinstance(data, dict):
        raise InferenceError("the response is not a JSON object")
    parser = endpoint["service_settings"]["response"]["json_parser"]
    tokens, weights = extract(data, parser["token_path"]), extract(data, parser["weight_path"])
    if not isinstance(tokens, list) or not isinstance(weights, list):
        raise InferenceError("Extracted field is an invalid type, expected a list")
    if len(tokens) != len(weights):
        raise InferenceError(f"The extracted tokens list is size [{len(tokens)}] but the weights list is size "
                             f"[{len(weights)}]. The list sizes must be equal.")  # fmt: skip
    out = []
    for i, (toks, ws) in enumerate(zip(tokens, weights, strict=True)):
        if not isinstance(toks, list) or not isinstance(ws, list) or len(toks) != len(ws):
            raise InferenceError(f"Failed to parse sparse embedding entry [{i}]")
        if not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in ws):
            raise InferenceError(f"Failed to parse sparse embedding entry [{i}]: a weight is not a Number")
        out.append({_java_string(t): float(np.float32(w)) for t, w in zip(toks, ws, strict=True)})
    return out


def infer(
    endpoint: dict[str, Any], texts: list[str], input_type: str | None, send: Callable[[Call], tuple[int, str]]
) -> list[dict[str, float]]:
    """One chunked inference: each batch sent; a status outside [200, 300) is the inference's error."""
    found: list[dict[str, float]] = []
    for batch in batches(endpoint, texts):
        status, body = send(request(endpoint, batch, input_type))
        if not 200 <= status < 300:
            raise InferenceError(f"Received an unsuccessful status code [{status}]: {body}")
        found.extend(sparse_embeddings(endpoint, body))
    if len(found) != len(texts):
        raise InferenceError(f"{len(found)} embeddings for {len(texts)} inputs")
    return found
