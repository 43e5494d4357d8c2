"""journeys.connector against a real HTTP server on 127.0.0.1: personalisation, the
classification of answers, the size cap and JSON parsing. No AWS, no other network."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from journeys import __version__
from journeys.connector import (
    AUDIENCE_SETTING,
    USER_AGENT,
    AudienceRequest,
    Call,
    ConnectorBadResponse,
    ConnectorMisconfigured,
    ConnectorRejected,
    HttpCallRequest,
    Limits,
    audience,
    audience_document,
    fetch,
    http_request,
    needs_contact,
    parse_request,
    personalise,
    run,
    webhook,
)
from journeys.contacts import ChannelState, ContactView
from journeys.exceptions import TransientError
from journeys.settings import Settings

# --- A local endpoint ----------------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Leave Content-Length out: the body ends when the connection closes.
    no_length: bool = False
    #: Seconds to wait before answering.
    delay: float = 0.0
    #: Send the body in pieces this far apart (seconds).
    drip: float = 0.0


def json_answer(value: Any, status: int = 200, **headers: str) -> Answer:
    return Answer(
        status, json.dumps(value).encode(), {"Content-Type": "application/json", **headers}
    )


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Route = Answer | Callable[[Received], Answer]


class Endpoint(ThreadingHTTPServer):
    """Answers each path with its route and records every request it received."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.received: list[Received] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeouts, unread answers) is what some tests want

    def last(self) -> Received:
        assert self.received, "the endpoint was not called"
        return self.received[-1]


class _Handler(BaseHTTPRequestHandler):
    server: Endpoint

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = Received(
            self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
        )
        self.server.received.append(received)
        route = self.server.routes.get(self.path.split("?", 1)[0], Answer(404, b"no route"))
        answer = route(received) if callable(route) else route
        if answer.delay:
            time.sleep(answer.delay)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if not answer.no_length:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.drip:
            for byte in answer.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(answer.drip)
        else:
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


@pytest.fixture(autouse=True)
def _direct_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls to 127.0.0.1 never go through a proxy the machine may have configured."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@contextmanager
def serving() -> Iterator[Endpoint]:
    """An Endpoint answering in a thread until the block ends."""
    server = Endpoint()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with serving() as server:
        yield server


# --- Requests and contacts -----------------------------------------------------------------

SETTINGS = Settings(
    region="us-east-1",
    contacts_table="contacts",
    events_table="events",
    messages_table="messages",
    waits_table="waits",
    entries_table="entries",
)
ADA = ContactView(
    "c/1",
    attributes={"first_name": "Ada", "plan": "pro plus", "score": 42},
    channels={
        "email": ChannelState("ada+news@example.com"),
        "sms": ChannelState("+44 20 7946 0000", status="unsubscribed"),
    },
    time_zone="Europe/London",
)
FAST = Limits(timeout=0.5, total=1.0)


def step(url: str, action: str = "webhook", **fields: Any) -> HttpCallRequest:
    payload = {
        "contact_id": "c/1",
        "workflow_id": "cart-abandonment",
        "step_id": "tell-the-crm",
        "step_label": "Tell the CRM",
        "execution_id": "arn:aws:states:us-east-1:123456789012:execution:cart:x",
        "trigger": {"key": "event:added_to_cart", "properties": {"sku": "A 1&2", "qty": 2}},
        "data": {"similar": {"items": [{"sku": "B2"}]}, "token": "t0k"},
        "action": action,
        "url": url,
        "method": "GET" if action == "fetch" else "POST",
        **fields,
    }
    request = parse_request(payload)
    assert isinstance(request, HttpCallRequest)
    return request


def audience_step(action: str = "add_to_audience") -> AudienceRequest:
    request = parse_request(
        {
            "contact_id": "c/1",
            "workflow_id": "cart-abandonment",
            "step_id": "retarget",
            "action": action,
            "network": "facebook",
            "audience": "cart-abandoners",
        }
    )
    assert isinstance(request, AudienceRequest)
    return request


# --- The request models --------------------------------------------------------------------


def test_payloads_from_older_or_newer_compilers_parse() -> None:
    request = step("https://x.example.com", future_field={"a": 1}, method="post")
    assert request.verb == "POST"
    payload = request.model_dump(exclude={"method"})
    assert parse_request(payload).verb == "POST"  # type: ignore[union-attr]
    payload["action"] = "fetch"
    assert parse_request(payload).verb == "GET"  # type: ignore[union-attr]
    assert isinstance(parse_request(audience_step().model_dump()), AudienceRequest)


def test_unknown_actions_and_methods_are_refused() -> None:
    with pytest.raises(ValidationError, match="webhook"):
        parse_request({"contact_id": "c", "workflow_id": "w", "step_id": "s", "action": "x"})
    with pytest.raises(ValidationError):
        step("https://x.example.com", method="TRACE")


# --- Personalisation -----------------------------------------------------------------------


def test_url_path_and_query_values_are_rendered_and_encoded() -> None:
    call = personalise(
        step(
            "https://crm.example.com/contacts/{{ contact.id }}/café"
            "?email={{ contact.email }}&sku={{ event.sku }}&n={{ data.similar['items'] | length }}"
            "&missing={{ contact.nothing.here }}&fixed=a b"
        ),
        ADA,
    )
    assert call.url == (
        "https://crm.example.com/contacts/c%2F1/caf%C3%A9"
        "?email=ada%2Bnews%40example.com&sku=A%201%262&n=1&missing=&fixed=a%20b"
    )
    assert personalise(step("https://bücher.example/x"), ADA).url == (
        "https://xn--bcher-kva.example/x"
    )
    # Errors name the step's URL as written: no query, no personal data.
    assert call.where == "POST https://crm.example.com/contacts/{{ contact.id }}/café"


def test_headers_are_rendered_on_one_line() -> None:
    call = personalise(
        step(
            "https://x.example.com",
            headers={
                "Authorization": "Bearer {{ data.token }}",
                "X-Plan": "{{ contact.plan }}\r\nX-Injected: yes",
                "X-Static": "journeys",
                "X-Count": 3,
            },
        ),
        ADA,
    )
    assert call.headers == {
        "Authorization": "Bearer t0k",
        "X-Plan": "pro plus X-Injected: yes",
        "X-Static": "journeys",
        "X-Count": "3",
    }


def test_body_strings_are_rendered_recursively() -> None:
    body = {
        "contact": "{{ contact.id }}",
        "greeting": "Hi {{ contact.first_name | default('there') }}!\n",
        "email": "{{ contact.email }}",
        "items": ["{{ data.similar['items'][0].sku }}", 7, None, True, {"q": "{{ event.qty }}"}],
        "workflow": "{{ workflow.id }}",
        "html": "<b>{{ contact.first_name }}</b>",
        "unknown": "{{ data.nothing }}",
        "percent_off": 20,
    }
    call = personalise(step("https://x.example.com", body=body), ADA)
    assert call.body == {
        "contact": "c/1",
        "greeting": "Hi Ada!\n",
        "email": "ada+news@example.com",
        "items": ["B2", 7, None, True, {"q": "2"}],
        "workflow": "cart-abandonment",
        "html": "<b>Ada</b>",  # JSON, not HTML: nothing is escaped
        "unknown": "",
        "percent_off": 20,
    }


def test_the_contact_is_read_only_when_a_template_uses_it() -> None:
    assert needs_contact(step("https://x.example.com/{{ contact.id }}"))
    assert needs_contact(step("https://x.example.com", headers={"X": "{{ contact.plan }}"}))
    assert needs_contact(
        step("https://x.example.com", body={"a": ["{% if contact.vip %}vip{% endif %}"]})
    )
    assert not needs_contact(
        step("https://x.example.com/{{ event.sku }}", body={"a": "{{ data.token }}", "n": 1})
    )


def test_the_sandbox_applies() -> None:
    call = personalise(step("https://x.example.com", body={"x": "{{ ''.__class__ }}"}), ADA)
    assert call.body == {"x": ""}  # unsafe attributes read as undefined
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ConnectorMisconfigured, match=r"body\.x: cannot render .* unsafe"):
        personalise(step("https://x.example.com", body={"x": escape}), ADA)


@pytest.mark.parametrize(
    ("url", "fields", "message"),
    [
        ("https://{{ data.host }}/x", {}, "host cannot be personalised"),
        ("ftp://files.example.com/x", {}, "only http and https"),
        ("file:///etc/passwd", {}, "only http and https"),
        ("crm.example.com/x", {}, "not an absolute"),
        ("https://user:secret@crm.example.com/x", {}, "no user:password"),
        ("https://bücher..example/x", {}, "not a host name"),
        ("https://x.example.com/{{ contact.id", {}, r"url: cannot render"),
        ("https://x.example.com", {"body": {"a": "{% if %}"}}, r"body\.a: cannot render"),
        ("https://x.example.com", {"headers": {"Bad Name": "x"}}, "not a valid HTTP token"),
        ("https://x.example.com", {"headers": {"X": "€{{ data.token }}"}}, "Latin-1"),
    ],
)
def test_steps_that_cannot_work_say_why(url: str, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorMisconfigured, match=message):
        personalise(step(url, **fields), ADA)


# --- HTTP: what is sent --------------------------------------------------------------------


def test_webhook_posts_the_personalised_request(endpoint: Endpoint) -> None:
    endpoint.routes["/hooks/c%2F1"] = Answer(202, b"accepted")
    request = step(
        endpoint.url("/hooks/{{ contact.id }}?sku={{ event.sku }}"),
        headers={"X-Api-Key": "k-{{ data.token }}"},
        body={"contact": "{{ contact.id }}", "name": "{{ contact.first_name }}", "n": 1},
    )
    assert webhook(request, SETTINGS, contact=ADA) == {"status": 202}
    received = endpoint.last()
    assert received.method == "POST"
    assert received.path == "/hooks/c%2F1?sku=A%201%262"
    assert received.json() == {"contact": "c/1", "name": "Ada", "n": 1}
    assert received.headers["Content-Type"] == "application/json; charset=utf-8"
    assert received.headers["User-Agent"] == USER_AGENT == f"journeys/{__version__}"
    assert received.headers["Accept"] == "application/json"
    assert received.headers["X-Api-Key"] == "k-t0k"


def test_no_body_no_content_type_and_step_headers_win(endpoint: Endpoint) -> None:
    endpoint.routes["/x"] = Answer(204)
    request = step(
        endpoint.url("/x"), method="DELETE", headers={"user-agent": "crm-sync", "Accept": "*/*"}
    )
    assert webhook(request, SETTINGS, contact=ADA) == {"status": 204}
    received = endpoint.last()
    assert received.method == "DELETE"
    assert received.body == b""
    assert "Content-Type" not in received.headers
    assert received.headers["User-Agent"] == "crm-sync"
    assert received.headers["Accept"] == "*/*"


def test_non_ascii_body_is_utf8_json(endpoint: Endpoint) -> None:
    endpoint.routes["/x"] = Answer(200)
    contact = ContactView("c-2", attributes={"first_name": "Zoë 🎉"})
    webhook(
        step(endpoint.url("/x"), body={"n": "{{ contact.first_name }}"}), SETTINGS, contact=contact
    )
    assert endpoint.last().body.decode("utf-8") == '{"n":"Zoë 🎉"}'


def test_run_without_contact_templates_never_reads_dynamodb(endpoint: Endpoint) -> None:
    # No tables are bound here: reading the contact would fail.
    endpoint.routes["/reco"] = json_answer({"items": ["B2"]})
    request = step(endpoint.url("/reco?sku={{ event.sku }}"), action="fetch")
    assert run(request, SETTINGS) == {"items": ["B2"]}
    assert endpoint.last().path == "/reco?sku=A%201%262"


# --- HTTP: how answers are classified ------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_answers_raise_transient_error(endpoint: Endpoint, status: int) -> None:
    endpoint.routes["/x"] = Answer(status, b"busy, come back later", {"Retry-After": "30"})
    with pytest.raises(TransientError) as caught:
        webhook(step(endpoint.url("/x?secret=s3cr3t")), SETTINGS, contact=ADA)
    message = str(caught.value)
    assert message.startswith(f"POST {endpoint.url('/x')} answered {status} ")
    assert "(Retry-After: 30)" in message
    assert message.endswith(": busy, come back later")
    assert "s3cr3t" not in message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_other_client_errors_are_rejections(endpoint: Endpoint, status: int) -> None:
    endpoint.routes["/x"] = json_answer({"error": "no such contact " + "x" * 500}, status)
    with pytest.raises(ConnectorRejected) as caught:
        fetch(step(endpoint.url("/x"), action="fetch"), SETTINGS, contact=ADA)
    message = str(caught.value)
    assert f"GET {endpoint.url('/x')} answered {status} " in message
    assert '{"error": "no such contact xxx' in message
    assert message.endswith("…") and len(message) < 400


def test_rejection_without_body(endpoint: Endpoint) -> None:
    endpoint.routes["/gone"] = Answer(410)
    with pytest.raises(ConnectorRejected, match=r"answered 410 Gone: \(no body\)$"):
        webhook(step(endpoint.url("/gone")), SETTINGS, contact=ADA)


def test_connection_refused_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError, match=f"POST http://127.0.0.1:{port}/x failed"):
        webhook(step(f"http://127.0.0.1:{port}/x"), SETTINGS, contact=ADA, limits=FAST)


def test_a_slow_answer_times_out_as_transient(endpoint: Endpoint) -> None:
    endpoint.routes["/slow"] = Answer(200, b"{}", delay=2.0)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"timed out after 0\.5 s"):
        fetch(step(endpoint.url("/slow"), action="fetch"), SETTINGS, contact=ADA, limits=FAST)
    assert time.monotonic() - started < 1.5


def test_a_dripping_answer_hits_the_total_deadline(endpoint: Endpoint) -> None:
    endpoint.routes["/drip"] = Answer(200, b'{"a": "' + b"x" * 40 + b'"}', drip=0.1)
    with pytest.raises(TransientError, match="took longer than 1 s"):
        fetch(step(endpoint.url("/drip"), action="fetch"), SETTINGS, contact=ADA, limits=FAST)


def test_same_host_redirects_are_followed_with_the_step_headers(endpoint: Endpoint) -> None:
    endpoint.routes["/old"] = Answer(301, headers={"Location": "/new"})
    endpoint.routes["/new"] = json_answer({"moved": True})
    request = step(endpoint.url("/old"), action="fetch", headers={"Authorization": "Bearer k"})
    assert fetch(request, SETTINGS, contact=ADA) == {"moved": True}
    assert [r.path for r in endpoint.received] == ["/old", "/new"]
    assert endpoint.last().headers["Authorization"] == "Bearer k"


def test_redirects_out_of_http_are_refused(endpoint: Endpoint) -> None:
    endpoint.routes["/old"] = Answer(302, headers={"Location": "ftp://files.example.com/x"})
    with pytest.raises(ConnectorRejected, match="302"):
        fetch(step(endpoint.url("/old"), action="fetch"), SETTINGS, contact=ADA)
    assert len(endpoint.received) == 1


# --- Fetch: the size cap and JSON ----------------------------------------------------------


def test_fetch_returns_the_json_as_is(endpoint: Endpoint) -> None:
    value = {"items": [{"sku": "B2", "price": 9.5}], "next": None, "ok": True}
    endpoint.routes["/reco"] = json_answer(value)
    assert fetch(step(endpoint.url("/reco"), action="fetch"), SETTINGS, contact=ADA) == value
    endpoint.routes["/list"] = json_answer([1, "two", {"three": 3}])
    assert fetch(step(endpoint.url("/list"), action="fetch"), SETTINGS, contact=ADA) == [
        1,
        "two",
        {"three": 3},
    ]


def test_fetch_accepts_json_whatever_the_content_type_says(endpoint: Endpoint) -> None:
    for content_type in ("text/plain", "application/json; charset=UTF-8"):
        bom = b'\xef\xbb\xbf{"a": 1}'
        endpoint.routes["/x"] = Answer(200, bom, {"Content-Type": content_type})
        assert fetch(step(endpoint.url("/x"), action="fetch"), SETTINGS, contact=ADA) == {"a": 1}
    body = '{"name": "Zoë"}'.encode("latin-1")
    endpoint.routes["/latin"] = Answer(
        200, body, {"Content-Type": "application/json; charset=iso-8859-1"}
    )
    assert fetch(step(endpoint.url("/latin"), action="fetch"), SETTINGS, contact=ADA) == {
        "name": "Zoë"
    }


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            Answer(200, b"<html><body>Hello</body></html>", {"Content-Type": "text/html"}),
            r"answered text/html, not JSON: <html><body>Hello",
        ),
        (Answer(200, b"plain words"), "answered no Content-Type, not JSON: plain words"),
        (Answer(200, b'{"a": NaN}', {"Content-Type": "application/json"}), "not JSON"),
        (json_answer("just a string"), "answered a JSON str .*object or list"),
        (json_answer(42), "answered a JSON int"),
        (Answer(204), "answered 204 No Content with no content"),
        (Answer(200, b"[" * 100_000), "not JSON"),
    ],
)
def test_fetch_needs_a_json_object_or_list(
    endpoint: Endpoint, answer: Answer, message: str
) -> None:
    endpoint.routes["/x"] = answer
    with pytest.raises(ConnectorBadResponse, match=message):
        fetch(step(endpoint.url("/x"), action="fetch"), SETTINGS, contact=ADA)


@pytest.mark.parametrize("no_length", [False, True])
def test_answers_over_200_kib_are_refused(endpoint: Endpoint, no_length: bool) -> None:
    big = {"items": ["x" * 1000] * 250}  # about 250 KiB
    endpoint.routes["/big"] = Answer(
        200, json.dumps(big).encode(), {"Content-Type": "application/json"}, no_length=no_length
    )
    with pytest.raises(ConnectorBadResponse, match="larger than 200 KiB"):
        fetch(step(endpoint.url("/big"), action="fetch"), SETTINGS, contact=ADA)
    fits = {"items": ["x" * 1000] * 190}
    endpoint.routes["/fits"] = json_answer(fits)
    assert fetch(step(endpoint.url("/fits"), action="fetch"), SETTINGS, contact=ADA) == fits


def test_webhook_answers_are_not_read_or_capped(endpoint: Endpoint) -> None:
    endpoint.routes["/x"] = Answer(200, b"x" * 300_000, {"Content-Type": "text/html"})
    assert webhook(step(endpoint.url("/x")), SETTINGS, contact=ADA) == {"status": 200}


def test_http_request_refuses_other_schemes() -> None:
    with pytest.raises(ConnectorMisconfigured, match="only http and https"):
        http_request(Call("GET", "file:///etc/passwd", "GET file:///etc/passwd"))


# --- Audiences -----------------------------------------------------------------------------


def test_audience_document_carries_the_identifiers() -> None:
    assert audience_document(audience_step(), ADA) == {
        "action": "add",
        "network": "facebook",
        "audience": "cart-abandoners",
        "contact_id": "c/1",
        "email": "ada+news@example.com",
        # Unsubscribing from SMS does not remove the number an ad network matches on.
        "phone": "+442079460000",
    }
    nobody = ContactView("c-3", channels={"email": ChannelState("not an address")})
    document = audience_document(audience_step("remove_from_audience"), nobody)
    assert (document["action"], document["email"], document["phone"]) == ("remove", None, None)


def test_audience_posts_to_the_configured_webhook(endpoint: Endpoint) -> None:
    endpoint.routes["/audiences"] = Answer(200, b"ok")
    settings = replace(SETTINGS, audience_webhook_url=endpoint.url("/audiences"))
    result = audience(audience_step("remove_from_audience"), settings, contact=ADA)
    assert result == {"status": 200, "action": "remove"}
    assert endpoint.last().json()["action"] == "remove"
    assert endpoint.last().json()["email"] == "ada+news@example.com"


def test_audience_without_a_webhook_names_the_setting() -> None:
    with pytest.raises(ConnectorMisconfigured, match=AUDIENCE_SETTING):
        audience(audience_step(), SETTINGS, contact=ADA)
    assert AUDIENCE_SETTING == "AUDIENCE_WEBHOOK_URL"


def test_audience_failures_are_classified_like_any_call(endpoint: Endpoint) -> None:
    endpoint.routes["/audiences"] = Answer(503, b"down")
    settings = replace(SETTINGS, audience_webhook_url=endpoint.url("/audiences"))
    with pytest.raises(TransientError, match="answered 503"):
        audience(audience_step(), settings, contact=ADA)
