"""The connector: HTTP calls of `webhook` and `fetch` steps, and ad-audience changes.

Compiled workflows call the connector function with the payloads of
`journeys.compiler.emit.emit_connector` and `emit_audience`:

- `webhook`  calls the step's URL; the answer is discarded (`ResultPath: null`).
- `fetch`    calls the step's URL and returns the JSON object or list it answered; the
             state machine stores it as is at `$.data.<save_as>` (plain Lambda ARN form).
- `add_to_audience`, `remove_from_audience`  post one JSON document per contact to
             `Settings.audience_webhook_url` (your connector to Facebook, Google, ...).

Personalisation: string values in the URL's path and query, in header values and anywhere
in the body are Jinja templates rendered in the sandbox of message templates with
`contact`, `event`, `data` and `workflow`. Values inserted into the URL are
percent-encoded; the scheme and host are never personalised. The contact is read from
DynamoDB only when a template uses it.

Failures, as the compiled Tasks expect them: timeouts, connection errors, 408, 429 and 5xx
raise `TransientError` (the state machine retries); other answers outside 2xx raise
`ConnectorRejected`; an answer a step cannot store (too large, not JSON) raises
`ConnectorBadResponse`; a step or deployment that cannot work as written raises
`ConnectorMisconfigured`. Unless a step says `on_failure: stop`, the journey carries on.

HTTP uses the standard library only. Nothing here reads the environment or does I/O at
import.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.client import HTTPException, HTTPMessage, InvalidURL
from typing import IO, Annotated, Any, Literal
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit
from urllib.request import (
    HTTPDefaultErrorHandler,
    HTTPErrorProcessor,
    HTTPHandler,
    HTTPRedirectHandler,
    HTTPSHandler,
    OpenerDirector,
    ProxyHandler,
    Request,
)

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, TypeAdapter, field_validator

from journeys import __version__, messaging, store
from journeys.contacts import ContactView
from journeys.exceptions import JourneysError, TransientError
from journeys.settings import Settings
from journeys.steps import StepRequest
from journeys.templates import environment, variables_used

USER_AGENT = f"journeys/{__version__}"
#: The environment variable behind `Settings.audience_webhook_url`.
AUDIENCE_SETTING = "AUDIENCE_WEBHOOK_URL"

#: A fetched value the state machine can store: a JSON object or list.
Json = dict[str, Any] | list[Any]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


# --- Errors (their class names reach Step Functions as error names) -----------------------


class ConnectorError(JourneysError):
    """A connector call failed for good: retrying the same call will not help."""


class ConnectorRejected(ConnectorError):
    """The endpoint answered outside 2xx, and not with a status worth retrying (a 4xx
    other than 408 and 429, or a redirect that may not be followed)."""


class ConnectorBadResponse(ConnectorError):
    """The endpoint answered 2xx with something a step cannot use or store: too large for
    a Step Functions payload, or (for `fetch`) not a JSON object or list."""


class ConnectorMisconfigured(ConnectorError):
    """The step or the deployment cannot work as written: a URL that is not http(s), a
    broken template, a bad header, no audience webhook configured."""


# --- Requests ------------------------------------------------------------------------------


class HttpCallRequest(StepRequest):
    """A `webhook` or `fetch` step (`emit_connector`). Unknown fields are ignored: an
    execution runs up to a year on the definition it started with."""

    action: Literal["webhook", "fetch"]
    url: str = Field(min_length=1)
    method: HttpMethod | None = None
    headers: dict[str, Any] | None = None
    body: Any = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def verb(self) -> HttpMethod:
        """The method, defaulting as the workflow language does (fetch GET, webhook POST)."""
        if self.method is not None:
            return self.method
        return "GET" if self.action == "fetch" else "POST"


class AudienceRequest(StepRequest):
    """An `add_to_audience` or `remove_from_audience` step (`emit_audience`)."""

    action: Literal["add_to_audience", "remove_from_audience"]
    # Not a closed list: a newer compiler may know more networks than this function.
    network: str = Field(min_length=1)
    audience: str = Field(min_length=1)


ConnectorRequest = HttpCallRequest | AudienceRequest
REQUEST_ADAPTER: TypeAdapter[ConnectorRequest] = TypeAdapter(
    Annotated[ConnectorRequest, Field(discriminator="action")]
)


def parse_request(event: Mapping[str, Any]) -> ConnectorRequest:
    """The request model for a Task payload, chosen by its `action`."""
    return REQUEST_ADAPTER.validate_python(event)


# --- Limits and the outgoing call ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    #: Seconds to connect, and for each read from the socket.
    timeout: float = 10.0
    #: Seconds for the whole call, reading the answer included (checked between reads, so
    #: the worst case is `total + timeout`: give the function a Timeout above that).
    total: float = 15.0
    #: Step Functions payloads are at most 256 KiB, state and trigger included.
    max_response_bytes: int = 200 * 1024


LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Call:
    """One rendered HTTP request. `where` names it in errors without personal data: the
    method and the URL as written in the step, query left out."""

    method: HttpMethod
    url: str
    where: str
    headers: Mapping[str, str] = field(default_factory=dict)
    #: JSON-serialisable; None sends no body.
    body: Any = None


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int
    #: The Content-Type header as sent ("" when there was none).
    content_type: str = ""
    charset: str | None = None
    body: bytes = b""


# --- Personalisation -----------------------------------------------------------------------

_TEMPLATE_MARKERS = ("{{", "{%", "{#")
_ORIGIN = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<netloc>[^/?#]*)(?P<rest>.*)$", re.S
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: What may stay as written in a URL's path and query: RFC 3986 reserved characters and
#: existing %-escapes. Spaces, quotes and non-ASCII text are percent-encoded.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


def is_template(text: str) -> bool:
    return any(marker in text for marker in _TEMPLATE_MARKERS)


def render_context(request: StepRequest, contact: ContactView | None) -> dict[str, Any]:
    """The roots step templates may read, as message templates see them (`links` aside:
    there is nothing to unsubscribe from in a webhook)."""
    return {
        "contact": messaging.contact_context(contact) if contact is not None else {},
        "event": messaging.event_properties(request.trigger),
        "data": dict(request.data),
        "workflow": {"id": request.workflow_id, "name": request.workflow_id},
    }


def _url_value(value: Any) -> str:
    # Every {{ value }} in a URL is one path segment or query value: "/", "&", "=", "+" and
    # "#" inside it must not change the URL's structure.
    return quote(str(value), safe="")


class _Renderer:
    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context
        self.text_env = environment()
        # A trailing newline of a body string is content, not template formatting.
        self.text_env.keep_trailing_newline = True
        self.url_env = environment()
        self.url_env.finalize = _url_value

    def render(self, source: str, where: str, env: SandboxedEnvironment | None = None) -> str:
        if not is_template(source):
            return source
        try:
            return (env or self.text_env).from_string(source).render(**self.context)
        except jinja2.TemplateError as error:
            raise ConnectorMisconfigured(f"{where}: cannot render {source!r}: {error}") from None

    def url(self, url: str) -> str:
        origin = _ORIGIN.match(url.strip())
        if origin is None:
            raise ConnectorMisconfigured(f"url {url!r} is not an absolute http(s) URL")
        scheme, netloc = origin["scheme"].lower(), origin["netloc"]
        if scheme not in ("http", "https"):
            raise ConnectorMisconfigured(f"url {url!r}: only http and https URLs are called")
        if is_template(netloc):
            raise ConnectorMisconfigured(
                f"url {url!r}: the host cannot be personalised, only the path and the query"
            )
        if not netloc or "@" in netloc:
            raise ConnectorMisconfigured(
                f"url {url!r} needs a host and no user:password (send credentials in headers)"
            )
        if not netloc.isascii():
            try:
                netloc = netloc.encode("idna").decode("ascii")
            except UnicodeError:
                raise ConnectorMisconfigured(
                    f"url {url!r}: {netloc!r} is not a host name"
                ) from None
        rest = self.render(origin["rest"], "url", self.url_env)
        return f"{scheme}://{netloc}{quote(rest, safe=_URL_SAFE)}"

    def headers(self, headers: Mapping[str, Any] | None) -> dict[str, str]:
        rendered: dict[str, str] = {}
        for name, value in (headers or {}).items():
            if not _HEADER_NAME.match(name):
                raise ConnectorMisconfigured(f"header name {name!r} is not a valid HTTP token")
            if value is None:
                continue
            text = self.render(str(value), f"headers.{name}")
            # One line, whatever a contact attribute holds: no header injection.
            text = " ".join(text.split())
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                raise ConnectorMisconfigured(
                    f"header {name}: HTTP header values must be Latin-1 text, got {text!r}"
                ) from None
            rendered[name] = text
        return rendered

    def json(self, value: Any, where: str = "body") -> Any:
        if isinstance(value, str):
            return self.render(value, where)
        if isinstance(value, Mapping):
            return {key: self.json(item, f"{where}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self.json(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return value


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def template_sources(request: HttpCallRequest) -> Iterator[tuple[str, str]]:
    """(where, source) of every template in the step: URL, header values, body strings."""
    for where, source in (
        ("url", request.url),
        *_strings(request.headers or {}, "headers"),
        *_strings(request.body, "body"),
    ):
        if is_template(source):
            yield where, source


def needs_contact(request: HttpCallRequest) -> bool:
    """Whether any template reads `contact` (otherwise DynamoDB is not asked)."""
    for where, source in template_sources(request):
        try:
            uses = variables_used(source)
        except jinja2.TemplateSyntaxError as error:
            raise ConnectorMisconfigured(f"{where}: cannot render {source!r}: {error}") from None
        if any(use.root == "contact" for use in uses):
            return True
    return False


def describe(method: str, url: str) -> str:
    """The method and URL for messages and logs, without query or fragment (they may hold
    personal data or secrets)."""
    return f"{method} {url.strip().split('?', 1)[0].split('#', 1)[0]}"


def personalise(request: HttpCallRequest, contact: ContactView | None) -> Call:
    """The step's request rendered for the contact (pure: no clock, no I/O)."""
    renderer = _Renderer(render_context(request, contact))
    return Call(
        method=request.verb,
        url=renderer.url(request.url),
        where=describe(request.verb, request.url),
        headers=renderer.headers(request.headers),
        body=renderer.json(request.body),
    )


# --- HTTP ----------------------------------------------------------------------------------

#: Answers worth another try later, besides every 5xx.
TRANSIENT_STATUSES = frozenset({408, 429})
_EXCERPT_BYTES = 1024
_EXCERPT_CHARS = 200
_CHUNK = 64 * 1024
_NOT_REDIRECTED = frozenset({"content-length", "content-type"})


class _Redirects(HTTPRedirectHandler):
    """Redirects to http(s) only, never from https down to http; the step's own headers
    (credentials, API keys) follow only to the same host."""

    max_redirections = 5

    def redirect_request(
        self, req: Request, fp: IO[bytes], code: int, msg: str, headers: HTTPMessage, newurl: str
    ) -> Request | None:
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        if new.scheme not in ("http", "https") or (old.scheme, new.scheme) == ("https", "http"):
            raise HTTPError(
                req.full_url,
                code,
                f"redirect to {describe('', newurl).strip()} refused",
                headers,
                fp,
            )
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        if redirected is not None and new.hostname == old.hostname:
            for name, value in req.unredirected_hdrs.items():
                if name.lower() not in _NOT_REDIRECTED:
                    redirected.add_unredirected_header(name, value)
        return redirected


def _opener() -> OpenerDirector:
    opener = OpenerDirector()
    for handler in (
        ProxyHandler(),  # HTTPS_PROXY / NO_PROXY, if the deployment sets them
        HTTPHandler(),
        HTTPSHandler(context=ssl.create_default_context()),
        HTTPDefaultErrorHandler(),
        _Redirects(),
        HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _excerpt(data: bytes) -> str:
    text = " ".join(data.decode("utf-8", errors="replace").split())
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "…"
    return text or "(no body)"


def _read_excerpt(response: Any) -> str:
    try:
        return _excerpt(response.read(_EXCERPT_BYTES))
    except (OSError, HTTPException, ValueError):
        return "(body unreadable)"


def _network_error(where: str, reason: object, limits: Limits) -> ConnectorError | TransientError:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return ConnectorError(f"{where}: TLS certificate not trusted ({reason.verify_message})")
    if isinstance(reason, TimeoutError):
        return TransientError(f"{where} timed out after {limits.timeout:g} s")
    return TransientError(f"{where} failed: {reason or type(reason).__name__}")


def _status_text(status: int, reason: str | None) -> str:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return f"{status} {reason}".strip()


SANDBOX_HEADER = "X-Journeys-Original-Url"


def sandboxed(call: Call, settings: Settings) -> Call:
    """`call` sent to `settings.http_sandbox_url` instead, keeping the path and query and
    naming the real URL in the `X-Journeys-Original-Url` header; unchanged without one."""
    if not settings.http_sandbox_url:
        return call
    parts = urlsplit(call.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return replace(
        call,
        url=f"{settings.http_sandbox_url}/{parts.netloc}{path}",
        headers={**call.headers, SANDBOX_HEADER: call.url},
    )


def http_request(call: Call, limits: Limits = LIMITS, *, read_body: bool = True) -> HttpResult:
    """Send `call`; the answer if it is 2xx, else the error the state machine acts on.

    With `read_body=False` (webhooks, audiences) a 2xx answer is not read at all.
    """
    target = _ORIGIN.match(call.url)
    if target is None or target["scheme"].lower() not in ("http", "https"):
        raise ConnectorMisconfigured(f"{call.where}: only http and https URLs are called")
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    data = None
    if call.body is not None:
        try:
            data = json.dumps(
                call.body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError) as error:
            raise ConnectorMisconfigured(f"{call.where}: body is not JSON: {error}") from None
        headers["Content-Type"] = "application/json; charset=utf-8"
    request = Request(call.url, data=data, headers=headers, method=call.method)
    for name, value in call.headers.items():  # the step's headers win over the defaults
        request.add_unredirected_header(name, value)
    started = time.monotonic()
    response: Any
    try:
        response = _opener().open(request, timeout=limits.timeout)
    except HTTPError as error:
        response = error  # an answer outside 2xx (or a redirect refused): classified below
    except URLError as error:
        raise _network_error(call.where, error.reason, limits) from error
    except (InvalidURL, ValueError) as error:
        raise ConnectorMisconfigured(f"{call.where}: {error}") from error
    except (OSError, HTTPException) as error:
        raise _network_error(call.where, error, limits) from error
    try:
        return _answer(call, response, limits, started, read_body)
    finally:
        response.close()


def _answer(
    call: Call, response: Any, limits: Limits, started: float, read_body: bool
) -> HttpResult:
    status = int(response.getcode())
    headers: HTTPMessage = response.headers
    said = f"{call.where} answered {_status_text(status, response.reason)}"
    if status >= 500 or status in TRANSIENT_STATUSES:
        retry_after = headers.get("Retry-After")
        wait = f" (Retry-After: {retry_after})" if retry_after else ""
        raise TransientError(f"{said}{wait}: {_read_excerpt(response)}")
    if not 200 <= status < 300:
        raise ConnectorRejected(f"{said}: {_read_excerpt(response)}")
    result = HttpResult(status, headers.get("Content-Type", ""), headers.get_content_charset(), b"")
    if not read_body:
        return result
    cap = limits.max_response_bytes
    too_large = (
        f"{call.where}: the answer is larger than {cap // 1024} KiB, too large to store in "
        "a Step Functions state (256 KiB at most, trigger and other data included); ask "
        "the endpoint for less"
    )
    length = headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > cap:
        raise ConnectorBadResponse(f"{too_large} (Content-Length: {length})")
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() - started > limits.total:
                raise TransientError(f"{call.where} took longer than {limits.total:g} s")
            chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise ConnectorBadResponse(too_large)
            chunks.append(chunk)
    except (OSError, HTTPException) as error:
        raise _network_error(call.where, error, limits) from error
    return HttpResult(result.status, result.content_type, result.charset, b"".join(chunks))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(result: HttpResult, where: str) -> Json:
    """The JSON object or list of a fetch's answer, else ConnectorBadResponse naming what
    arrived instead."""
    got = result.content_type or "no Content-Type"
    if not result.body.strip():
        raise ConnectorBadResponse(
            f"{where} answered {_status_text(result.status, None)} with no content "
            f"({got}); a fetch needs a JSON object or list"
        )
    try:
        text: str | bytes = result.body  # json detects UTF-8/16/32 and a BOM by itself
        if result.charset and result.charset.lower().replace("-", "") != "utf8":
            text = result.body.decode(result.charset)
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, LookupError, RecursionError):
        raise ConnectorBadResponse(
            f"{where} answered {got}, not JSON: {_excerpt(result.body)}"
        ) from None
    if not isinstance(value, dict | list):
        raise ConnectorBadResponse(
            f"{where} answered a JSON {type(value).__name__} ({got}); a fetch needs a JSON "
            "object or list"
        )
    return value


# --- The services --------------------------------------------------------------------------


def _contact_if_needed(request: HttpCallRequest, contact: ContactView | None) -> ContactView | None:
    if contact is None and needs_contact(request):
        return store.load_contact(request.contact_id)
    return contact


def webhook(
    request: HttpCallRequest,
    settings: Settings,
    *,
    contact: ContactView | None = None,
    limits: Limits = LIMITS,
) -> dict[str, Any]:
    """Call the step's URL with its personalised headers and body; {"status": <code>}.
    `contact` skips the DynamoDB read (else it is loaded if a template needs it)."""
    call = sandboxed(personalise(request, _contact_if_needed(request, contact)), settings)
    return {"status": http_request(call, limits, read_body=False).status}


def fetch(
    request: HttpCallRequest,
    settings: Settings,
    *,
    contact: ContactView | None = None,
    limits: Limits = LIMITS,
) -> Json:
    """Call the step's URL and return the JSON object or list it answered, as is."""
    call = sandboxed(personalise(request, _contact_if_needed(request, contact)), settings)
    return parse_json(http_request(call, limits), call.where)


def _identifier(contact: ContactView, *channels: str) -> str | None:
    for channel in channels:
        state = contact.channels.get(channel)
        if state is not None and state.address:
            normalized = messaging.normalize_address(channel, str(state.address))
            if normalized:
                return normalized
    return None


def audience_document(request: AudienceRequest, contact: ContactView) -> dict[str, Any]:
    """What the audience webhook receives: the change and the identifiers an ad network
    matches on (the receiving connector normalises and hashes them)."""
    return {
        "action": "add" if request.action == "add_to_audience" else "remove",
        "network": request.network,
        "audience": request.audience,
        "contact_id": contact.contact_id,
        "email": _identifier(contact, "email"),
        "phone": _identifier(contact, "sms", "whatsapp"),
    }


def audience(
    request: AudienceRequest,
    settings: Settings,
    *,
    contact: ContactView | None = None,
    limits: Limits = LIMITS,
) -> dict[str, Any]:
    """Post the audience change to `settings.audience_webhook_url`;
    {"status": <code>, "action": "add"|"remove"}."""
    url = settings.audience_webhook_url.strip()
    if not url:
        raise ConnectorMisconfigured(
            f"no audience connector is configured: set {AUDIENCE_SETTING} to the URL that "
            f"receives {request.network} audience changes"
        )
    target = _ORIGIN.match(url)
    if target is None or target["scheme"].lower() not in ("http", "https"):
        raise ConnectorMisconfigured(f"{AUDIENCE_SETTING} must be an http(s) URL")
    if contact is None:
        contact = store.load_contact(request.contact_id)
    document = audience_document(request, contact)
    call = sandboxed(Call("POST", url, describe("POST", url), body=document), settings)
    result = http_request(call, limits, read_body=False)
    return {"status": result.status, "action": document["action"]}


def run(request: ConnectorRequest, settings: Settings, *, limits: Limits = LIMITS) -> Any:
    """Do what the Task asked; the value is what the state machine receives."""
    if isinstance(request, AudienceRequest):
        return audience(request, settings, limits=limits)
    if request.action == "fetch":
        return fetch(request, settings, limits=limits)
    return webhook(request, settings, limits=limits)
