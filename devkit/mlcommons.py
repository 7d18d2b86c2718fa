"""What OpenSearch does with a remote sparse model's connector, written from its source (no OpenSearch server can
run on these machines): the request ml-commons builds for each batch, and what neural-search accepts back.

ml-commons @ 950f05600289177bba83a9521f85d07e258d15c5 (ML_COMMONS):
- ``RemoteConnectorExecutor.calculateChunkSize``: a batch of texts is cut into chunks of the connector's
  ``input_docs_processed_step_size`` (no step: one call for the whole batch); a refused chunk is not split again.
- ``RemoteConnectorExecutor.preparePayloadAndInvoke``: parameters = the connector's ``parameters``, then the
  request's ``MLAlgoParams`` (``getParams``: ``AsymmetricTextEmbeddingParameters.toXContent`` writes
  ``content_type`` when set and ``sparse_embedding_format`` always, as the enum names QUERY/PASSAGE, WORD/TOKEN_ID),
  then the pre-process output.
- ``ConnectorUtils.getPreprocessFunction`` + ``OpenAIEmbeddingPreProcessFunction.process`` +
  ``StringUtils.convertScriptStringToJsonString``: no pre-process function and text docs -> parameter ``input`` =
  the texts as a JSON array (Gson, HTML escaping off), which ``escapeRemoteInferenceInputData`` leaves as is.
- ``HttpConnector.createPayload``: ``fillNullParameters`` turns ``"${parameters.X:-null}"`` (quotes included)
  into ``null`` when X is absent, then ``StringSubstitutor(parameters, "${parameters.", "}")`` (commons-text:
  ``${parameters.X:-default}`` takes the default when X is absent); ``Connector.validatePayload`` refuses a payload
  with a placeholder left.
- ``AbstractConnector.createDecryptedHeaders``: headers filled by ``StringSubstitutor(credential, "${credential.",
  "}")``. Amazon OpenSearch Service resolves a ``secretArn`` credential into ``secretArn.<key>`` entries, one per
  key of the secret's JSON (ml-commons docs/remote_inference_blueprints/openai_connector_embedding_blueprint.md).
- ``ConnectorUtils.processOutput``: no post-process function -> the ``response_filter`` parameter (JsonPath) is
  read from the response, and ``AbstractConnector.parseResponse`` wraps a list as ``{"response": list}`` (a map
  stays the map); one ModelTensor per chunk.
- ``Connector.validateConnectorURL`` / ``MLCommonsSettings.validateRegexSafety``: the action URL must ``matches()``
  one of ``plugins.ml_commons.trusted_connector_endpoints_regex``; a regex with nested quantifiers or over 256
  characters is refused.

neural-search @ 936d3c4d7feba5a499dd9c67f7a8e4dccb818151 (NEURAL_SEARCH):
- ``util/TokenWeightUtil.fetchListOfTokenWeightMap``: every tensor map has ``response``, a list; each element a map
  with String keys and Number values (``floatValue()``); the lists of all chunks, concatenated, one per text.
- ``sparse/mapper/SparseVectorFieldMapper.parseCreateField``: a ``sparse_vector`` key must parse as a non-negative
  integer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from jsonpath_ng.ext.parser import parse as jsonpath

from .enginecalls import Call

ML_COMMONS = "opensearch-project/ml-commons@950f05600289177bba83a9521f85d07e258d15c5"
NEURAL_SEARCH = "opensearch-project/neural-search@936d3c4d7feba5a499dd9c67f7a8e4dccb818151"
_PARAM = re.compile(r"\$\{parameters\.([^}:]+)(?::-([^}]*))?\}")
_NULL_DEFAULT = re.compile(r'"\$\{parameters\.(\w+):-null\}"')
_CREDENTIAL = re.compile(r"\$\{credential\.([^}]+)\}")


class MLCommonsError(ValueError):
    """What ml-commons or neural-search would refuse (the message names the rule)."""


def algo_parameters(sparse_embedding_format: str | None, content_type: str | None) -> dict[str, str]:
    """``AsymmetricTextEmbeddingParameters`` as ``getParams`` flattens it (None: neural-search sends no params)."""
    if sparse_embedding_format is None and content_type is None:
        return {}
    params = {"sparse_embedding_format": (sparse_embedding_format or "WORD").upper()}
    if content_type is not None:
        params["content_type"] = content_type.upper()
    return params


def chunks(texts: list[str], connector: dict[str, Any]) -> list[list[str]]:
    """``calculateChunkSize``: consecutive chunks of the step size, or the whole batch."""
    step_text = connector.get("parameters", {}).get("input_docs_processed_step_size")
    if step_text is None:
        return [texts]
    step = int(step_text)
    if step <= 0:
        raise MLCommonsError("Invalid parameter: input_docs_processed_step_size. It must be positive integer.")
    return [texts[i : i + step] for i in range(0, len(texts), step)]


def _substitute(template: str, params: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in params and params[name] is not None:
            return params[name]
        return default if default is not None else m.group(0)

    return _PARAM.sub(one, template)


def payload(action: dict[str, Any], params: dict[str, str]) -> str:
    """``createPayload`` then ``validatePayload``."""
    body = _NULL_DEFAULT.sub(lambda m: m.group(0) if params.get(m.group(1)) is not None else "null",
                             action["request_body"])  # fmt: skip
    body = _substitute(body, params)
    left = re.findall(r"\$\{parameters\.([^}]+)\}", body)
    if left:
        raise MLCommonsError(f"Some parameter placeholder not filled in payload: {', '.join(left)}")
    try:
        json.loads(body)
    except ValueError:
        raise MLCommonsError(f"Invalid payload: {body}") from None
    return body


def decrypted_credential(connector: dict[str, Any], secret: dict[str, str] | None = None) -> dict[str, str]:
    """The connector's credential; a ``secretArn`` one (Amazon OpenSearch Service) adds ``secretArn.<key>``."""
    credential = dict(connector.get("credential", {}))
    if "secretArn" in credential:
        if secret is None:
            raise MLCommonsError("the connector reads a secret (secretArn): pass the secret's JSON")
        credential.update({f"secretArn.{k}": v for k, v in secret.items()})
    return credential


def headers(action: dict[str, Any], credential: dict[str, str]) -> dict[str, str]:
    """``createDecryptedHeaders``: ``${credential.*}`` filled; ``${parameters.*}`` in a header is refused."""
    out = {}
    for name, value in action.get("headers", {}).items():
        if "${parameters." in value:
            raise MLCommonsError(f"Header '{name}' cannot use ${{parameters.*}} placeholders for security reasons.")
        out[name] = _CREDENTIAL.sub(lambda m: credential.get(m.group(1), m.group(0)), value)
        if "${credential." in out[name]:
            raise MLCommonsError(f"header {name}: credential {out[name]} not found")
    return out


def calls(
    connector: dict[str, Any], texts: list[str], algo: dict[str, str], secret: dict[str, str] | None = None
) -> list[Call]:
    """The calls ml-commons makes for one ``predict`` of ``texts`` (one per chunk)."""
    (action,) = [a for a in connector["actions"] if a["action_type"] == "predict"]
    credential = decrypted_credential(connector, secret)
    found = []
    for chunk in chunks(texts, connector):
        params = {**connector.get("parameters", {}), **algo}
        params["input"] = json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
        url = _substitute(action["url"], connector.get("parameters", {}))
        found.append(Call(chunk, url, headers(action, credential), payload(action, params)))
    return found


def model_tensor(connector: dict[str, Any], response_text: str) -> dict[str, Any]:
    """``processOutput`` without a post-process function: the response filter, then ``parseResponse``."""
    response: Any = json.loads(response_text)
    flt = connector.get("parameters", {}).get("response_filter")
    if flt is not None:
        matches = [m.value for m in jsonpath(flt).find(response)]
        if matches:  # tryReadResponseFilter: a path that finds nothing leaves the whole response
            response = matches[0] if len(matches) == 1 else matches
    return response if isinstance(response, dict) else {"response": response}


def token_weights(tensors: list[dict[str, Any]]) -> list[dict[str, float]]:
    """``TokenWeightUtil.fetchListOfTokenWeightMap``, its checks and messages in short."""
    if not tensors:
        raise MLCommonsError("The inference result can not be null or empty.")
    maps: list[Any] = []
    for tensor in tensors:
        if "response" not in tensor:
            raise MLCommonsError("The model response is missing the required 'response' key.")
        if not isinstance(tensor["response"], list):
            raise MLCommonsError("The model 'response' field must be a list of token-weight maps")
        maps.extend(tensor["response"])
    out = []
    for one in maps:
        if not isinstance(one, dict):
            raise MLCommonsError("Each element in the model 'response' must be a token-weight map")
        if not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                   for k, v in one.items()):  # fmt: skip
            raise MLCommonsError("The model token-weight map must have String keys and numeric values.")
        out.append({k: float(v) for k, v in one.items()})
    return out


def sparse_vector_keys_ok(weights: dict[str, float]) -> bool:
    """``SparseVectorFieldMapper``: every key a non-negative integer."""
    return all(re.fullmatch(r"\+?[0-9]+", k) is not None for k in weights)


def trusted(url: str, regexes: list[str]) -> bool:
    """``validateRegexSafety`` of each regex, then ``validateResolvedEndpoint`` (Java ``matches()``: the whole
    URL). Java and Python agree on these regexes' syntax (character classes, escapes, anchors)."""
    for regex in regexes:
        if re.fullmatch(r".*\([^)]*[*+?]\)[*+?{].*", regex) or re.fullmatch(r".*\\[1-9].*", regex):
            raise MLCommonsError(f"Regex pattern contains nested quantifiers or backreferences: {regex}")
        if len(regex) > 256:
            raise MLCommonsError(f"Regex pattern too long (max 256 chars): {regex}")
    return any(re.fullmatch(regex, url) for regex in regexes)


def predict(
    connector: dict[str, Any],
    texts: list[str],
    algo: dict[str, str],
    send: Callable[[Call], tuple[int, str]],
    secret: dict[str, str] | None = None,
) -> list[dict[str, float]]:
    """One neural-search inference: every call sent, a non-2xx status raised (ml-commons does not split it),
    the tensors read as neural-search reads them."""
    tensors = []
    for call in calls(connector, texts, algo, secret):
        status, body = send(call)
        if not 200 <= status < 300:
            raise MLCommonsError(f"Error from remote service: {status} {body}")
        tensors.append(model_tensor(connector, body))
    return token_weights(tensors)
