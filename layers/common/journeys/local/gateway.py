"""The local stack's API Gateway: template.yaml's REST API, served on 127.0.0.1.

Clients of the local stack (the web app, curl, the tests) must meet the same front door as
on AWS, or code that works locally breaks when deployed. So the routes come from the
template itself (`routes_from_template`: every `Type: Api` event of every function on the
API) and each request becomes the REST API Lambda proxy event that API Gateway sends, for
the function's own handler to answer; what it returns goes back over HTTP the way API
Gateway maps a proxy response. The caller supplies `invoke(function_logical_id, event)`,
so this module never knows how a function runs.

What API Gateway does and this reproduces (each is tested):

- Routing is on resource and method together, as measured on REST APIs: of the resources
  that match the path and declare the method (or `ANY`), the most specific wins (a
  literal segment over a `{param}` over a greedy `{proxy+}`, segment by segment), then a
  specific method over `ANY`. So `DELETE /v1/unsubscribe` (GET and POST only) falls
  through to `ANY /v1/{proxy+}`, and `POST /v1/imports` is ImportApiFunction's. Only when
  nothing matches is it 403 `{"message": "Missing Authentication Token"}`.
- API keys: on a route that requires one, a missing or unknown `x-api-key` (header names
  are case-insensitive) is 403 `{"message": "Forbidden"}`. Routing comes first, so an
  unknown path is Missing Authentication Token with or without a key.
- Bodies over 10 MiB are 413 `{"message": "Request Entity Too Large"}`, answered before
  routing and without handing the body to anyone.
- A function that raises, or returns anything but a proxy response (a mapping with an
  integer `statusCode`, string `body`, string-valued headers), is 502
  `{"message": "Internal server error"}`; the reason is logged.
- HEAD and OPTIONS get no special treatment, as on a REST API without CORS: they reach a
  function only through a route whose method is `ANY` (here `/v1/{proxy+}`, so with the
  API key, and the function answers them like any other method); outside it they are
  Missing Authentication Token. A HEAD response carries the headers and no body.
- Every response carries `x-amzn-RequestId` (the event's `requestContext.requestId`) and
  `x-amz-apigw-id`; the 403s and the 502 also `x-amzn-ErrorType`.
- Percent-encoding is kept, as REST APIs do: `/v1/contacts/user%2F42` arrives with
  `path` `/v1/contacts/user%2F42` and `pathParameters` `{"proxy": "contacts/user%2F42"}`;
  decoding a path parameter is the function's business. Query strings are decoded (`+`
  is a space) and split on `&` and `;` (API Gateway splits on semicolons too).

Local choices, where one machine differs from AWS:

- The stage: AWS URLs carry it (`https://<api>.execute-api.<region>.amazonaws.com/<stage>
  /v1/events`); here both `<url>/<stage>/v1/events` and `<url>/v1/events` work, so a base
  URL copied from either place is right. A path that starts with the stage is matched
  without it first and, only if no route takes it, as it is (`GET /local/outbox`
  stays reachable with stage "local"). The event's `path` never has the stage and
  `requestContext.path` always has it, as on AWS.
- Binary bodies: a request whose Content-Type is one of the API's `BinaryMediaTypes`
  (`text/csv` here; `*/*` and `type/*` match as on AWS) reaches the function
  base64-encoded with `isBase64Encoded: true`, as on AWS. Any other body that is not valid
  UTF-8 is base64-encoded too, where AWS would mangle it: locally nothing is lost. A
  proxy response with `isBase64Encoded: true` is always decoded before it is sent (AWS
  also looks at the request's Accept header).
- One invocation at a time: a Lambda execution environment never runs two at once, and
  handlers rely on that (Powertools' resolver keeps the current event on a module-level
  app). Here every function shares this process's modules (ApiFunction and
  ImportApiFunction are the same code, hence the same app), so concurrent requests queue
  on one lock, as if the API had a single execution environment. Local-only routes run
  concurrently.
- `extra_routes` mount local-only endpoints (an outbox viewer, say) beside the
  template's; they always require the API key and use the same route syntax.
  `public_routes` need no key (the dashboard's static files).
- CORS: when the API has `Cors`, every OPTIONS request is answered as API Gateway's mock
  preflight would, for any origin; the answers of functions carry their own CORS headers.
- Only 127.0.0.1 is served: the local stack has fake credentials and is nobody's
  business beyond this machine.

Every request logs one line at INFO on `journeys.local.api`: method, path (without the
query string, which may carry signed-link secrets), status, milliseconds. No bodies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "ACCOUNT_ID",
    "API_ID",
    "MAX_PAYLOAD_BYTES",
    "LocalApi",
    "LocalRequest",
    "LocalResponse",
    "Route",
    "binary_media_types",
    "gateway_error",
    "match_route",
    "proxy_event",
    "proxy_response",
    "routes_from_template",
]

logger = logging.getLogger("journeys.local.api")

#: API Gateway's payload quota for REST APIs.
MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024
#: A client that ignores `Expect: 100-continue` and sends a body this big anyway has the
#: rest of its body read and dropped, so it can read the 413; past this it is cut off.
_DRAIN_LIMIT: Final = 4 * MAX_PAYLOAD_BYTES
#: moto's default account, so ARNs in events and in moto agree.
ACCOUNT_ID: Final = "123456789012"
API_ID: Final = "journeyslo"
LOCAL_HOST: Final = "127.0.0.1"
#: The methods an API Gateway REST API method can be declared with.
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
#: The implicit API that SAM creates for Api events without a RestApiId.
IMPLICIT_API: Final = "ServerlessRestApi"

_PARAMETER = re.compile(r"^\{([A-Za-z0-9._-]+)\}$")
_GREEDY = re.compile(r"^\{([A-Za-z0-9._-]+)\+\}$")
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
#: Response headers the server computes itself (a function's values would corrupt framing).
_FRAMING_HEADERS: Final = frozenset({"content-length", "transfer-encoding", "connection"})

# --- Routes ----------------------------------------------------------------------------------

_LITERAL, _PARAM, _PROXY = 0, 1, 2


@dataclass(frozen=True)
class Route:
    """One method on one API resource: `GET /v1/unsubscribe` -> `ApiFunction`, public.

    `path` uses API Gateway's syntax: `{name}` for one segment, a final `{name+}` for the
    rest of the path. `method` is upper case, `ANY` for every method.
    """

    path: str
    method: str
    function: str
    api_key_required: bool

    def __post_init__(self) -> None:
        where = f"route {self.method} {self.path}"
        _check_route(self.path, self.method, where)
        if self.method != self.method.upper():
            raise ValueError(f"{where}: write the method in upper case ({self.method.upper()})")

    @property
    def rank(self) -> tuple[int, ...]:
        """Precedence of the resource, smaller first: per segment literal, {param}, {proxy+}."""
        return tuple(kind for kind, _ in _parts(self.path))

    @property
    def shape(self) -> tuple[str, ...]:
        """The resource without parameter names: `/v1/{id}` and `/v1/{name}` are one."""
        return tuple(
            name if kind == _LITERAL else "{}" if kind == _PARAM else "{+}"
            for kind, name in _parts(self.path)
        )

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if `path` (percent-encoded, no stage) is on this resource."""
        segments = _segments(path)
        parameters: dict[str, str] = {}
        parts = _parts(self.path)
        for index, (kind, name) in enumerate(parts):
            if kind == _PROXY:
                rest = segments[index:]
                if not rest or rest == ("",):
                    return None
                parameters[name] = "/".join(rest)
                return parameters
            if index >= len(segments):
                return None
            segment = segments[index]
            if kind == _LITERAL:
                if segment != name:
                    return None
            elif not segment:
                return None
            else:
                parameters[name] = segment
        return parameters if len(segments) == len(parts) else None


def _segments(path: str) -> tuple[str, ...]:
    return () if path in ("", "/") else tuple(path[1:].split("/"))


def _parts(path: str) -> tuple[tuple[int, str], ...]:
    parts: list[tuple[int, str]] = []
    for segment in _segments(path):
        greedy = _GREEDY.match(segment)
        parameter = _PARAMETER.match(segment)
        if greedy:
            parts.append((_PROXY, greedy.group(1)))
        elif parameter:
            parts.append((_PARAM, parameter.group(1)))
        else:
            parts.append((_LITERAL, segment))
    return tuple(parts)


def _check_route(path: Any, method: Any, where: str) -> None:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(
            f"{where}: Path must be a string starting with / (like /v1/{{proxy+}}), "
            f"not {path!r}; intrinsic functions are not supported in Api event paths"
        )
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValueError(
            f"{where}: Method {method!r} is not one API Gateway accepts; use one of "
            f"{', '.join(sorted(METHODS))}"
        )
    segments = _segments(path)
    for index, segment in enumerate(segments):
        if not segment and path != "/":
            raise ValueError(f"{where}: Path {path!r} has an empty segment; remove the extra /")
        if _GREEDY.match(segment) and index != len(segments) - 1:
            raise ValueError(
                f"{where}: Path {path!r} has a greedy {segment} before its end; "
                "a {name+} segment must be the last one"
            )
        if ("{" in segment or "}" in segment) and not (
            _GREEDY.match(segment) or _PARAMETER.match(segment)
        ):
            raise ValueError(
                f"{where}: Path segment {segment!r} of {path!r} is neither a literal nor a "
                "whole {name} or {name+} parameter"
            )


def match_route(
    routes: Sequence[Route], method: str, path: str
) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway picks for `method path` (percent-encoded, no stage) and its
    path parameters; None when API Gateway would answer Missing Authentication Token.

    Of the routes whose resource matches the path and whose method is `method` or ANY, the
    most specific resource wins, then the specific method over ANY.
    """
    best: tuple[tuple[tuple[int, ...], bool], Route, dict[str, str]] | None = None
    for route in routes:
        if route.method not in (method, "ANY"):
            continue
        found = route.match(path)
        if found is None:
            continue
        key = (route.rank, route.method == "ANY")
        if best is None or key < best[0]:
            best = (key, route, found)
    return None if best is None else (best[1], best[2])


def _check_unique(routes: Sequence[Route]) -> None:
    seen: dict[tuple[tuple[str, ...], str], Route] = {}
    parameter_names: dict[tuple[str, ...], tuple[int, str]] = {}
    for route in routes:
        key = (route.shape, route.method)
        if key in seen:
            raise ValueError(
                f"{route.method} {route.path} is declared twice (for {seen[key].function} and "
                f"{route.function}); API Gateway allows one integration per resource and method"
            )
        seen[key] = route
        for depth, (kind, name) in enumerate(_parts(route.path)):
            if kind == _LITERAL:
                continue
            parent = route.shape[:depth]
            previous = parameter_names.setdefault(parent, (kind, name))
            if previous != (kind, name):
                raise ValueError(
                    f"{route.path}: /{'/'.join(parent)} already has the variable path part "
                    f"{{{previous[1]}{'+' if previous[0] == _PROXY else ''}}}; API Gateway "
                    "allows one per resource, so use the same name in every path"
                )


def _ref(value: Any) -> str | None:
    if isinstance(value, Mapping) and set(value) == {"Ref"} and isinstance(value["Ref"], str):
        return value["Ref"]
    return None


def _key_default(template: Mapping[str, Any], api: Mapping[str, Any] | None) -> bool:
    """The API's `Auth.ApiKeyRequired`, else the template's Globals, else SAM's false."""
    for source in (
        (api or {}).get("Properties") or {},
        ((template.get("Globals") or {}).get("Api")) or {},
    ):
        auth = source.get("Auth") or {}
        if "ApiKeyRequired" in auth:
            return _flag(auth["ApiKeyRequired"], "Auth.ApiKeyRequired")
    return False


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{where} must be true or false, not {value!r}")


def routes_from_template(template: Mapping[str, Any], api_logical_id: str = "Api") -> list[Route]:
    """Every `Type: Api` event on the API `api_logical_id`, as API Gateway would route them.

    `template` is template.yaml as a CloudFormation-aware YAML loader reads it (`!Ref Api`
    is `{"Ref": "Api"}`). The result is in resource tree order: within a parent, literal
    segments before `{param}` before `{proxy+}`; on one resource, specific methods before ANY.
    """
    resources = template.get("Resources") or {}
    api = resources.get(api_logical_id)
    if api is None and api_logical_id != IMPLICIT_API:
        raise ValueError(
            f"the template has no resource {api_logical_id!r}; pass the logical id of the "
            "AWS::Serverless::Api whose routes to serve"
        )
    if api is not None and api.get("Type") != "AWS::Serverless::Api":
        raise ValueError(
            f"resource {api_logical_id!r} is a {api.get('Type')}, not an AWS::Serverless::Api"
        )
    default_key = _key_default(template, api)
    routes: list[Route] = []
    for function_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = (resource.get("Properties") or {}).get("Events") or {}
        for event_name, event in events.items():
            if event.get("Type") != "Api":
                continue
            where = f"Resources.{function_id}.Properties.Events.{event_name}.Properties"
            properties = event.get("Properties") or {}
            rest_api = properties.get("RestApiId")
            target = IMPLICIT_API if rest_api is None else _ref(rest_api)
            if target != api_logical_id:
                continue
            path, method = properties.get("Path"), properties.get("Method")
            _check_route(path, method, where)
            auth = properties.get("Auth") or {}
            required = (
                _flag(auth["ApiKeyRequired"], f"{where}.Auth.ApiKeyRequired")
                if "ApiKeyRequired" in auth
                else default_key
            )
            routes.append(Route(str(path), str(method).upper(), function_id, required))
    _check_unique(routes)
    return sorted(routes, key=_tree_order)


def _tree_order(route: Route) -> tuple[tuple[tuple[int, str], ...], bool, str]:
    """Resource tree order: literal segments before {param} before {proxy+}, ANY last."""
    segments = tuple((kind, name if kind == _LITERAL else "") for kind, name in _parts(route.path))
    return segments, route.method == "ANY", route.method


def binary_media_types(template: Mapping[str, Any], api_logical_id: str = "Api") -> list[str]:
    """The API's `BinaryMediaTypes` (else the Globals'), with SAM's `~1` read as `/`."""
    api = (template.get("Resources") or {}).get(api_logical_id) or {}
    for source in (api.get("Properties") or {}, (template.get("Globals") or {}).get("Api") or {}):
        if "BinaryMediaTypes" in source:
            types = source["BinaryMediaTypes"]
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise ValueError(
                    f"BinaryMediaTypes of {api_logical_id} must be a list of media types like "
                    f"text~1csv, not {types!r}"
                )
            return [t.replace("~1", "/").replace("~0", "~") for t in types]
    return []


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_binary(content_type: str | None, types: Collection[str]) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    kind = media.split("/", 1)[0]
    for wanted in (t.lower() for t in types):
        if wanted in ("*/*", media) or (wanted.endswith("/*") and wanted[:-2] == kind):
            return True
    return False


# --- Requests and responses --------------------------------------------------------------------


@dataclass(frozen=True)
class LocalRequest:
    """A request as API Gateway sees it once routed: what `proxy_event` and local routes read.

    `path` is percent-encoded as received and has no stage; `query` is decoded; `headers`
    keep the client's names, order and repeats.
    """

    method: str
    path: str
    resource: str
    path_parameters: Mapping[str, str]
    query: Sequence[tuple[str, str]]
    headers: Sequence[tuple[str, str]]
    body: bytes
    stage: str
    source_ip: str = LOCAL_HOST
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    extended_request_id: str = field(default_factory=lambda: _extended_id())
    time_epoch_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    api_key: str | None = None

    def header(self, name: str) -> str | None:
        """The last value of a header, whatever the case of its name."""
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found


@dataclass(frozen=True)
class LocalResponse:
    """What goes back over HTTP; local routes return one."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(
        cls, status: int, value: Any, headers: Sequence[tuple[str, str]] = ()
    ) -> LocalResponse:
        body = json.dumps(value, indent=2, sort_keys=True).encode("utf-8")
        return cls(status, body, (("Content-Type", "application/json"), *headers))

    @classmethod
    def text(
        cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8"
    ) -> LocalResponse:
        return cls(status, text.encode("utf-8"), (("Content-Type", content_type),))

    def header(self, name: str) -> str | None:
        """The first value of a header, whatever the case of its name."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def _extended_id() -> str:
    """Looks like API Gateway's `x-amz-apigw-id` (16 base64 characters)."""
    return base64.b64encode(secrets.token_bytes(10)).decode("ascii")


def _request_time(epoch_ms: int) -> str:
    """`requestContext.requestTime`: 04/Mar/2020:19:15:17 +0000 (English month, any locale)."""
    _, day, month, year, clock, _ = formatdate(epoch_ms / 1000, usegmt=True).split()
    return f"{day}/{month}/{year}:{clock} +0000"


def proxy_event(
    request: LocalRequest,
    *,
    binary_media_types: Collection[str] = (),
    api_id: str = API_ID,
    account_id: str = ACCOUNT_ID,
) -> dict[str, Any]:
    """The REST API Lambda proxy integration event for `request`.

    Empty headers, query strings and path parameters are None, as API Gateway sends them;
    a single-value map holds the last value of a repeated name. The body is base64 when
    its Content-Type is one of `binary_media_types`, or when it is not UTF-8.
    """
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in request.query:
        query[name] = value
        multi_query.setdefault(name, []).append(value)
    body: str | None = None
    encoded = False
    if request.body:
        binary = _is_binary(request.header("Content-Type"), binary_media_types)
        body = None if binary else _utf8(request.body)
        if body is None:
            body, encoded = base64.b64encode(request.body).decode("ascii"), True
    identity: dict[str, Any] = {
        "accessKey": None,
        "accountId": None,
        "caller": None,
        "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "principalOrgId": None,
        "sourceIp": request.source_ip,
        "user": None,
        "userAgent": request.header("User-Agent"),
        "userArn": None,
    }
    if request.api_key is not None:
        identity["apiKey"] = request.api_key
        identity["apiKeyId"] = hashlib.sha256(request.api_key.encode()).hexdigest()[:10]
    return {
        "resource": request.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(request.path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": request.header("Host") or LOCAL_HOST,
            "domainPrefix": api_id,
            "extendedRequestId": request.extended_request_id,
            "httpMethod": request.method,
            "identity": identity,
            "path": f"/{request.stage}{request.path}",
            "protocol": "HTTP/1.1",
            "requestId": request.request_id,
            "requestTime": _request_time(request.time_epoch_ms),
            "requestTimeEpoch": request.time_epoch_ms,
            "resourceId": hashlib.sha256(request.resource.encode()).hexdigest()[:6],
            "resourcePath": request.resource,
            "stage": request.stage,
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def _header_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise ValueError(f"{where} is a {type(value).__name__}, not a string")
    if "\r" in text or "\n" in text:
        raise ValueError(f"{where} contains a line break")
    return text


def proxy_response(result: Any) -> LocalResponse:
    """The HTTP response API Gateway makes of a function's proxy response.

    Raises ValueError, saying what is wrong, where API Gateway would answer 502.
    `multiValueHeaders` win over `headers` for the same name (any case), as on AWS.
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"the function returned a {type(result).__name__}, not a proxy response")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"statusCode must be an HTTP status number, not {status!r}")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"body must be a string (JSON-encode it), not a {type(body).__name__}")
    encoded = result.get("isBase64Encoded") or False
    if not isinstance(encoded, bool):
        raise ValueError(f"isBase64Encoded must be true or false, not {encoded!r}")
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        raise ValueError("headers and multiValueHeaders must be objects")
    pairs: list[tuple[str, str]] = []
    for name, values in multi.items():
        if not isinstance(values, list):
            raise ValueError(f"multiValueHeaders[{name!r}] must be a list of strings")
        pairs += [
            (str(name), _header_value(value, f"multiValueHeaders[{name!r}]")) for value in values
        ]
    taken = {str(name).lower() for name in multi}
    pairs += [
        (str(name), _header_value(value, f"headers[{name!r}]"))
        for name, value in single.items()
        if str(name).lower() not in taken
    ]
    if encoded:
        try:
            content = base64.b64decode(body or "", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("isBase64Encoded is true but body is not base64") from None
    else:
        content = (body or "").encode("utf-8")
    kept = tuple((name, value) for name, value in pairs if name.lower() not in _FRAMING_HEADERS)
    if not any(name.lower() == "content-type" for name, _ in kept):
        kept = (("Content-Type", "application/json"), *kept)
    return LocalResponse(status, content, kept)


_ERROR_TYPES: Final = {
    "Missing Authentication Token": "MissingAuthenticationTokenException",
    "Forbidden": "ForbiddenException",
    "Internal server error": "InternalServerErrorException",
}


def gateway_error(status: int, message: str) -> LocalResponse:
    """An error API Gateway answers itself, in its own shape: `{"message": ...}`."""
    headers = [("Content-Type", "application/json")]
    if message in _ERROR_TYPES:
        headers.append(("x-amzn-ErrorType", _ERROR_TYPES[message]))
    body = json.dumps({"message": message}).encode("utf-8")
    return LocalResponse(status, body, tuple(headers))


#: What the template's `Cors` makes API Gateway answer to preflights (a mock integration,
#: no key). Locally any origin: the dashboard is served by the same API anyway.
_PREFLIGHT_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Headers", "Content-Type,X-Api-Key"),
    ("Access-Control-Allow-Methods", "GET,POST,PUT,OPTIONS"),
    ("Access-Control-Max-Age", "600"),
)


def _preflight() -> LocalResponse:
    return LocalResponse(200, b"", _PREFLIGHT_HEADERS)


def _missing_token() -> LocalResponse:
    return gateway_error(403, "Missing Authentication Token")


def _too_large() -> LocalResponse:
    return gateway_error(413, "Request Entity Too Large")


def _internal() -> LocalResponse:
    return gateway_error(502, "Internal server error")


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


# --- The server ---------------------------------------------------------------------------------

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
LocalHandler = Callable[[LocalRequest], LocalResponse]


@dataclass(frozen=True)
class _Endpoint:
    route: Route
    local: LocalHandler | None = None


class LocalApi:
    """The REST API of `routes` on http://127.0.0.1:<port>, calling `invoke` per request.

    `api_keys` are the keys of the API's usage plan: a key-protected route accepts exactly
    these. `binary_media_types` are the API's `BinaryMediaTypes` (see `from_template`).
    `port` 0 takes a free port; `url` says which once started.
    """

    @classmethod
    def from_template(
        cls,
        template: Mapping[str, Any],
        invoke: Invoke,
        api_keys: Collection[str],
        api_logical_id: str = "Api",
        **options: Any,
    ) -> LocalApi:
        """The API `api_logical_id` of the template: its routes, binary media types and
        whether it answers CORS preflights."""
        api = (template.get("Resources") or {}).get(api_logical_id) or {}
        return cls(
            routes_from_template(template, api_logical_id),
            invoke,
            api_keys,
            binary_media_types=binary_media_types(template, api_logical_id),
            cors=bool((api.get("Properties") or {}).get("Cors")),
            **options,
        )

    def __init__(
        self,
        routes: Sequence[Route],
        invoke: Invoke,
        api_keys: Collection[str],
        stage: str = "local",
        host: str = LOCAL_HOST,
        port: int = 0,
        extra_routes: Mapping[tuple[str, str], LocalHandler] | None = None,
        binary_media_types: Collection[str] = (),
        public_routes: Mapping[tuple[str, str], LocalHandler] | None = None,
        cors: bool = False,
    ) -> None:
        if host != LOCAL_HOST:
            raise ValueError(
                f"the local API serves only {LOCAL_HOST}, not {host!r}: it runs with fake "
                "credentials and must not be reachable from other machines"
            )
        if not _STAGE.match(stage):
            raise ValueError(
                f"stage {stage!r} is not a valid API Gateway stage name (letters, digits, "
                "- and _, at most 128)"
            )
        self.stage = stage
        self._invoke = invoke
        self._api_keys = frozenset(key for key in api_keys if key)
        self._binary_media_types = tuple(binary_media_types)
        self._address = (host, port)
        endpoints = {route: _Endpoint(route) for route in routes}
        for routes_, keyed in ((extra_routes, True), (public_routes, False)):
            for (method, path), local in (routes_ or {}).items():
                route = Route(path, method.upper(), f"local:{method.upper()} {path}", keyed)
                endpoints[route] = _Endpoint(route, local)
        self._cors = cors
        self._routes = list(endpoints)
        _check_unique(self._routes)
        self._endpoints = endpoints
        self._invoking = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> LocalApi:
        if self._server is not None:
            raise RuntimeError(f"the local API is already serving on {self.url}")
        server = _Server(self._address, _RequestHandler)
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"journeys-local-api-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LocalApi:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the local API is not started; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, without the stage (`<url>/<stage>` works as well)."""
        return f"http://{LOCAL_HOST}:{self.port}"

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    # -- requests --

    def respond(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        source_ip: str = LOCAL_HOST,
    ) -> LocalResponse:
        """What API Gateway answers to one HTTP request (`target` as on the request line)."""
        request_id, extended_id = str(uuid.uuid4()), _extended_id()
        response = self._respond(method, target, headers, body, source_ip, request_id, extended_id)
        return _stamped(response, request_id, extended_id)

    def too_large(self) -> LocalResponse:
        """The answer to a body over the limit, for a server that did not keep the body."""
        return _stamped(_too_large(), str(uuid.uuid4()), _extended_id())

    def _respond(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str,
        extended_id: str,
    ) -> LocalResponse:
        if len(body) > MAX_PAYLOAD_BYTES:
            return _too_large()
        path, query = _split_target(target)
        if method == "OPTIONS" and self._cors:
            return _preflight()
        found = self._route(method, path)
        if found is None:
            return _missing_token()
        endpoint, parameters, path = found
        route = endpoint.route
        api_key = _last(headers, "x-api-key")
        if route.api_key_required and api_key not in self._api_keys:
            return gateway_error(403, "Forbidden")
        request = LocalRequest(
            method=method,
            path=path,
            resource=route.path,
            path_parameters=parameters,
            query=parse_qsl(query.replace(";", "&"), keep_blank_values=True),
            headers=_forwarded(headers, source_ip, self._address_port()),
            body=body,
            stage=self.stage,
            source_ip=source_ip,
            request_id=request_id,
            extended_request_id=extended_id,
            api_key=api_key if route.api_key_required else None,
        )
        if endpoint.local is not None:
            return self._call_local(endpoint.local, request)
        return self._call_function(route.function, request)

    def _route(self, method: str, path: str) -> tuple[_Endpoint, dict[str, str], str] | None:
        """The endpoint for `method path`, its parameters and the path without the stage."""
        candidates = [path]
        prefix = f"/{self.stage}"
        if path == prefix:
            candidates = ["/", path]
        elif path.startswith(prefix + "/"):
            candidates = [path[len(prefix) :], path]
        # A trailing slash is taken as without it when nothing matches it as is.
        candidates += [c.rstrip("/") for c in candidates if len(c) > 1 and c.endswith("/")]
        for candidate in candidates:
            picked = match_route(self._routes, method, candidate)
            if picked is not None:
                route, parameters = picked
                return self._endpoints[route], parameters, candidate
        return None

    def _call_function(self, function: str, request: LocalRequest) -> LocalResponse:
        event = proxy_event(request, binary_media_types=self._binary_media_types)
        try:
            with self._invoking:
                result = self._invoke(function, event)
        except Exception:
            logger.exception(
                "%s failed on %s %s (request %s)",
                function,
                request.method,
                request.path,
                request.request_id,
            )
            return _internal()
        try:
            response = proxy_response(result)
        except ValueError as error:
            logger.error(
                "%s returned a malformed proxy response to %s %s (request %s): %s",
                function,
                request.method,
                request.path,
                request.request_id,
                error,
            )
            return _internal()
        return LocalResponse(
            response.status, response.body, (*response.headers, ("X-Amzn-Trace-Id", _trace_id()))
        )

    def _call_local(self, local: LocalHandler, request: LocalRequest) -> LocalResponse:
        try:
            response = local(request)
        except Exception:
            logger.exception("local route %s %s failed", request.method, request.resource)
            return _internal()
        if not isinstance(response, LocalResponse):
            logger.error(
                "local route %s %s returned %r", request.method, request.resource, response
            )
            return _internal()
        return response

    def _address_port(self) -> int:
        return self.port if self._server is not None else self._address[1]


def _stamped(response: LocalResponse, request_id: str, extended_id: str) -> LocalResponse:
    """The response with the ids API Gateway puts on every answer."""
    return LocalResponse(
        response.status,
        response.body,
        (*response.headers, ("x-amzn-RequestId", request_id), ("x-amz-apigw-id", extended_id)),
    )


def _split_target(target: str) -> tuple[str, str]:
    """The path (still percent-encoded) and the raw query of a request target."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path.partition("#")[0] or "/", query.partition("#")[0]


def _last(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    found = None
    for key, value in headers:
        if key.lower() == name:
            found = value
    return found


def _forwarded(
    headers: Sequence[tuple[str, str]], source_ip: str, port: int
) -> tuple[tuple[str, str], ...]:
    """The request headers plus those API Gateway adds before the function sees them."""
    names = {name.lower() for name, _ in headers}
    added: list[tuple[str, str]] = []
    forwarded_for = _last(headers, "x-forwarded-for")
    added.append(
        ("X-Forwarded-For", f"{forwarded_for}, {source_ip}" if forwarded_for else source_ip)
    )
    added += [("X-Forwarded-Port", str(port)), ("X-Forwarded-Proto", "http")]
    if "x-amzn-trace-id" not in names:
        added.append(("X-Amzn-Trace-Id", _trace_id()))
    replaced = {name.lower() for name, _ in added}
    return (
        *((name, value) for name, value in headers if name.lower() not in replaced),
        *added,
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections must not hold up stop().
    block_on_close = False
    api: LocalApi


class _BadRequest(Exception):
    """The request cannot be read as HTTP (framing, not content)."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Headers and body go out as separate writes; without this a keep-alive client
    #: waits for its delayed ACK (~40 ms) on every request.
    disable_nagle_algorithm = True
    #: Seconds an idle keep-alive connection is kept.
    timeout = 60
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: `journeys.local.api` has the access log."""

    def handle_expect_100(self) -> bool:
        # A client that waits for 100 Continue is told now, before sending a body too big.
        if self._declared_length() > MAX_PAYLOAD_BYTES:
            self._send(self.server.api.too_large(), time.perf_counter(), close=True)
            return False
        return super().handle_expect_100()

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return 0

    def _serve(self) -> None:
        started = time.perf_counter()
        try:
            body = self._read_body()
        except _BadRequest as error:
            response = LocalResponse.json(400, {"message": f"Bad Request: {error}"})
            self._send(response, started, close=True)
            return
        if body is None:
            self._send(self.server.api.too_large(), started, close=True)
            return
        response = self.server.api.respond(
            self.command, self.path, list(self.headers.items()), body, self.client_address[0]
        )
        self._send(response, started)

    def _read_body(self) -> bytes | None:
        """The request body; None when it is over the limit (then it was not kept)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b""
        try:
            length = int(declared)
        except ValueError:
            raise _BadRequest(f"Content-Length {declared!r} is not a number") from None
        if length < 0:
            raise _BadRequest(f"Content-Length {length} is negative")
        if length > MAX_PAYLOAD_BYTES:
            self._drop(length)
            return None
        return self.rfile.read(length)

    def _drop(self, length: int) -> None:
        """Read and forget a body too big to keep, so the client can read the 413."""
        self.close_connection = True
        if length > _DRAIN_LIMIT:
            return
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                return
            left -= len(chunk)

    def _read_chunked(self) -> bytes | None:
        body = bytearray()
        while True:
            line = self.rfile.readline(1 << 16)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1 << 16) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            if len(body) + size > MAX_PAYLOAD_BYTES:
                self.close_connection = True
                return None
            body += self.rfile.read(size)
            self.rfile.readline(1 << 16)

    def _send(self, response: LocalResponse, started: float, close: bool = False) -> None:
        # Logged before the client can read the response, so the line is there when it has.
        logger.info(
            "%s %s %d %.1fms",
            self.command,
            _split_target(self.path)[0],
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        if response.status == 413:
            close = True
        self.send_response_only(response.status, _reason(response.status))
        self.send_header("Date", self.date_time_string())
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
