"""The local API Gateway without sockets: routes from template.yaml, API Gateway's
precedence, and the translation of requests to proxy events and proxy responses back."""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from journeys.local.gateway import (
    MAX_PAYLOAD_BYTES,
    LocalApi,
    LocalRequest,
    LocalResponse,
    Route,
    binary_media_types,
    match_route,
    proxy_event,
    proxy_response,
    routes_from_template,
)
from tests.helpers.aws import load_template
from tests.helpers.lambdas import FakeLambdaContext

KEY = "local-key"

# --- Routes from the template ----------------------------------------------------------------


def test_the_template_routes_are_its_api_events() -> None:
    routes = routes_from_template(load_template())
    # the API function's three events, and the import function's two
    assert routes == [
        Route("/v1/imports", "POST", "ImportApiFunction", api_key_required=True),
        Route("/v1/imports/{import_id}", "GET", "ImportApiFunction", api_key_required=True),
        Route("/v1/unsubscribe", "GET", "ApiFunction", api_key_required=False),
        Route("/v1/unsubscribe", "POST", "ApiFunction", api_key_required=False),
        Route("/v1/{proxy+}", "ANY", "ApiFunction", api_key_required=True),
    ]


def test_the_template_binary_media_types_are_read_with_sams_escape() -> None:
    assert binary_media_types(load_template()) == ["text/csv"]
    document = template(Globals={"Api": {"BinaryMediaTypes": ["image~1*", "a~0b"]}})
    assert binary_media_types(document) == ["image/*", "a~b"]
    with pytest.raises(ValueError, match="must be a list of media types"):
        binary_media_types(
            template(
                api={
                    "Type": "AWS::Serverless::Api",
                    "Properties": {"BinaryMediaTypes": "text~1csv"},
                }
            )
        )


def function(events: dict[str, Any], name: str = "Fn") -> dict[str, Any]:
    return {name: {"Type": "AWS::Serverless::Function", "Properties": {"Events": events}}}


def api_event(path: str, method: str, api: str | None = "Api", **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"Path": path, "Method": method, **extra}
    if api is not None:
        properties["RestApiId"] = {"Ref": api}
    return {"Type": "Api", "Properties": properties}


def template(*functions: dict[str, Any], api: dict[str, Any] | None = None, **top: Any) -> Any:
    resources: dict[str, Any] = {"Api": api or {"Type": "AWS::Serverless::Api", "Properties": {}}}
    for item in functions:
        resources.update(item)
    return {"Resources": resources, **top}


def test_the_api_key_default_comes_from_the_api_then_globals_and_events_override_it() -> None:
    events = {
        "Open": api_event("/open", "GET", Auth={"ApiKeyRequired": False}),
        "Closed": api_event("/closed", "GET"),
    }
    # GIVEN the default on the Api resource
    keyed_api = {"Type": "AWS::Serverless::Api", "Properties": {"Auth": {"ApiKeyRequired": True}}}
    routes = {
        r.path: r.api_key_required
        for r in routes_from_template(template(function(events), api=keyed_api))
    }
    assert routes == {"/open": False, "/closed": True}
    # GIVEN the default in Globals.Api
    globals_only = template(function(events), Globals={"Api": {"Auth": {"ApiKeyRequired": True}}})
    assert {r.path: r.api_key_required for r in routes_from_template(globals_only)} == routes
    # GIVEN no default at all: SAM's is no key
    assert not routes_from_template(template(function(events)))[0].api_key_required


def test_only_events_of_the_chosen_api_are_routes() -> None:
    events = {
        "Mine": api_event("/mine", "get"),
        "Other": api_event("/other", "GET", api="OtherApi"),
        "Implicit": api_event("/implicit", "GET", api=None),
        "Queue": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Q", "Arn"]}}},
    }
    document = template(function(events))
    assert [(r.method, r.path) for r in routes_from_template(document)] == [("GET", "/mine")]
    # SAM puts events without a RestApiId on its implicit API
    implicit = routes_from_template(document, "ServerlessRestApi")
    assert [r.path for r in implicit] == ["/implicit"]


@pytest.mark.parametrize(
    ("events", "api_id", "message"),
    [
        ({"E": api_event("/a/{proxy+}/b", "GET")}, "Api", "must be the last one"),
        ({"E": api_event("/a", "FETCH")}, "Api", "Method 'FETCH' is not one API Gateway accepts"),
        ({"E": api_event({"Fn::Sub": "/${X}"}, "GET")}, "Api", "Path must be a string"),
        ({"E": api_event("v1/a", "GET")}, "Api", "starting with /"),
        ({"E": api_event("/a//b", "GET")}, "Api", "empty segment"),
        ({"E": api_event("/a/x{id}", "GET")}, "Api", "neither a literal nor a whole"),
        ({"E": api_event("/a", "GET")}, "Missing", "no resource 'Missing'"),
        (
            {"E": api_event("/a/{id}", "GET"), "F": api_event("/a/{name}", "GET")},
            "Api",
            "declared twice",
        ),
        (
            {"E": api_event("/a/{id}", "GET"), "F": api_event("/a/{name}/b", "GET")},
            "Api",
            "already has the variable path part {id}",
        ),
        (
            {"E": api_event("/a", "GET", Auth={"ApiKeyRequired": "maybe"})},
            "Api",
            "ApiKeyRequired must be true or false",
        ),
    ],
)
def test_a_template_api_gateway_would_refuse_says_where_and_why(
    events: dict[str, Any], api_id: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        routes_from_template(template(function(events)), api_id)
    if api_id == "Api" and "twice" not in message and "variable" not in message:
        assert "Resources.Fn.Properties.Events.E.Properties" in str(raised.value)


# --- Precedence ------------------------------------------------------------------------------

ROUTES = [
    Route("/v1/{proxy+}", "ANY", "Proxy", True),
    Route("/v1/unsubscribe", "GET", "Page", False),
    Route("/v1/unsubscribe", "POST", "Confirm", False),
    Route("/v1/contacts/{contact_id}", "GET", "GetContact", True),
    Route("/v1/contacts/{contact_id}", "ANY", "AnyContact", True),
    Route("/v1/contacts/me", "GET", "Me", True),
]


@pytest.mark.parametrize(
    ("method", "path", "function", "parameters"),
    [
        # exact paths before parameters before greedy
        ("GET", "/v1/contacts/me", "Me", {}),
        ("GET", "/v1/contacts/ada", "GetContact", {"contact_id": "ada"}),
        ("GET", "/v1/contacts/ada/journeys", "Proxy", {"proxy": "contacts/ada/journeys"}),
        ("GET", "/v1/unsubscribe", "Page", {}),
        ("POST", "/v1/unsubscribe", "Confirm", {}),
        # specific methods before ANY on the same resource
        ("DELETE", "/v1/contacts/ada", "AnyContact", {"contact_id": "ada"}),
        # a resource without the method yields to a less specific one that has it
        ("POST", "/v1/contacts/me", "AnyContact", {"contact_id": "me"}),
        ("DELETE", "/v1/unsubscribe", "Proxy", {"proxy": "unsubscribe"}),
        ("OPTIONS", "/v1/unsubscribe", "Proxy", {"proxy": "unsubscribe"}),
        ("HEAD", "/v1/unsubscribe", "Proxy", {"proxy": "unsubscribe"}),
        ("HEAD", "/v1/events", "Proxy", {"proxy": "events"}),
        # percent-encoding is kept: API Gateway does not decode path parameters
        ("PUT", "/v1/contacts/user%2F42", "AnyContact", {"contact_id": "user%2F42"}),
        ("GET", "/v1/x%2Fy/z", "Proxy", {"proxy": "x%2Fy/z"}),
    ],
)
def test_the_most_specific_resource_with_the_method_wins(
    method: str, path: str, function: str, parameters: dict[str, str]
) -> None:
    for routes in (ROUTES, random.Random(7).sample(ROUTES, len(ROUTES))):
        found = match_route(routes, method, path)
        assert found is not None
        route, got = found
        assert (route.function, got) == (function, parameters)


@pytest.mark.parametrize(
    ("routes", "method", "path"),
    [
        (ROUTES, "GET", "/"),
        (ROUTES, "GET", "/v1"),
        (ROUTES, "GET", "/v1/"),
        (ROUTES, "GET", "/v2/events"),
        # without a greedy catch-all, a method no resource declares
        (ROUTES[1:], "DELETE", "/v1/unsubscribe"),
        (ROUTES[1:], "POST", "/v1/contacts/me/x"),
    ],
)
def test_no_route_is_missing_authentication_token(
    routes: list[Route], method: str, path: str
) -> None:
    assert match_route(routes, method, path) is None


def test_routes_from_the_template_come_most_specific_first() -> None:
    events = {
        name: api_event(route.path, route.method)
        for name, route in zip("ABCDEF", ROUTES, strict=True)
    }
    ordered = routes_from_template(template(function(events)))
    assert [(r.path, r.method) for r in ordered] == [
        ("/v1/contacts/me", "GET"),
        ("/v1/contacts/{contact_id}", "GET"),
        ("/v1/contacts/{contact_id}", "ANY"),
        ("/v1/unsubscribe", "GET"),
        ("/v1/unsubscribe", "POST"),
        ("/v1/{proxy+}", "ANY"),
    ]


# --- Request -> proxy event ------------------------------------------------------------------


def request(**fields: Any) -> LocalRequest:
    values: dict[str, Any] = {
        "method": "PUT",
        "path": "/v1/contacts/ada",
        "resource": "/v1/{proxy+}",
        "path_parameters": {"proxy": "contacts/ada"},
        "query": [],
        "headers": [("Host", "127.0.0.1:9000"), ("Content-Type", "application/json")],
        "body": b"",
        "stage": "local",
        "request_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "extended_request_id": "Lk3cXFTeIAMEbXw=",
        "time_epoch_ms": 1_583_349_317_135,
        **fields,
    }
    return LocalRequest(**values)


def test_a_request_becomes_the_rest_api_proxy_event() -> None:
    event = proxy_event(
        request(
            query=[("tag", "a"), ("tag", "b"), ("q", "x y")],
            headers=[
                ("Host", "127.0.0.1:9000"),
                ("x-api-key", KEY),
                ("Accept", "text/html"),
                ("Accept", "application/json"),
                ("User-Agent", "pytest"),
            ],
            body=b'{"attributes": {}}',
            api_key=KEY,
        )
    )
    assert event == {
        "resource": "/v1/{proxy+}",
        "path": "/v1/contacts/ada",
        "httpMethod": "PUT",
        "headers": {
            "Host": "127.0.0.1:9000",
            "x-api-key": KEY,
            "Accept": "application/json",
            "User-Agent": "pytest",
        },
        "multiValueHeaders": {
            "Host": ["127.0.0.1:9000"],
            "x-api-key": [KEY],
            "Accept": ["text/html", "application/json"],
            "User-Agent": ["pytest"],
        },
        "queryStringParameters": {"tag": "b", "q": "x y"},
        "multiValueQueryStringParameters": {"tag": ["a", "b"], "q": ["x y"]},
        "pathParameters": {"proxy": "contacts/ada"},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "journeyslo",
            "domainName": "127.0.0.1:9000",
            "domainPrefix": "journeyslo",
            "extendedRequestId": "Lk3cXFTeIAMEbXw=",
            "httpMethod": "PUT",
            "identity": {
                "accessKey": None,
                "accountId": None,
                "apiKey": KEY,
                "apiKeyId": event["requestContext"]["identity"]["apiKeyId"],
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": "127.0.0.1",
                "user": None,
                "userAgent": "pytest",
                "userArn": None,
            },
            "path": "/local/v1/contacts/ada",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "04/Mar/2020:19:15:17 +0000",
            "requestTimeEpoch": 1_583_349_317_135,
            "resourceId": event["requestContext"]["resourceId"],
            "resourcePath": "/v1/{proxy+}",
            "stage": "local",
        },
        "body": '{"attributes": {}}',
        "isBase64Encoded": False,
    }
    assert len(event["requestContext"]["resourceId"]) == 6


def test_absent_parts_are_null_as_api_gateway_sends_them() -> None:
    event = proxy_event(
        request(
            method="GET",
            resource="/v1/unsubscribe",
            path="/v1/unsubscribe",
            path_parameters={},
            headers=[],
        )
    )
    for key in (
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "body",
    ):
        assert event[key] is None, key
    assert event["isBase64Encoded"] is False
    assert "apiKey" not in event["requestContext"]["identity"]


def test_a_body_that_is_not_utf8_arrives_base64_encoded() -> None:
    raw = b"\xff\xfe\x00binary"
    event = proxy_event(request(body=raw))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


@pytest.mark.parametrize(
    ("content_type", "types", "binary"),
    [
        ("text/csv", ["text/csv"], True),
        ("Text/CSV; charset=utf-8", ["text/csv"], True),
        ("application/json", ["text/csv"], False),
        (None, ["text/csv"], False),
        ("image/png", ["image/*"], True),
        ("application/json", ["*/*"], True),
        ("text/csv", [], False),
    ],
)
def test_a_binary_media_type_arrives_base64_encoded_even_as_utf8(
    content_type: str | None, types: list[str], binary: bool
) -> None:
    headers = [] if content_type is None else [("Content-Type", content_type)]
    event = proxy_event(
        request(headers=headers, body=b"contact_id\nada\n"), binary_media_types=types
    )
    assert event["isBase64Encoded"] is binary
    body = base64.b64decode(event["body"]) if binary else event["body"].encode()
    assert body == b"contact_id\nada\n"


def test_powertools_rest_resolver_reads_the_event_as_api_gateway_meant_it() -> None:
    # GIVEN a Powertools REST resolver with a route like the API's
    app = APIGatewayRestResolver()

    @app.get("/v1/contacts/<contact_id>")
    def read(contact_id: str) -> dict[str, Any]:
        current = app.current_event
        return {
            "contact_id": contact_id,
            "tag": current.get_multi_value_query_string_values("tag"),
            "key": current.headers.get("X-API-KEY"),
            "request_id": current.request_context.request_id,
            "stage": current.request_context.stage,
            "proxy": current.path_parameters["proxy"],
        }

    event = proxy_event(
        request(
            method="GET",
            path="/v1/contacts/user%2F42",
            path_parameters={"proxy": "contacts/user%2F42"},
            query=[("tag", "a"), ("tag", "b")],
            headers=[("x-api-key", KEY)],
        )
    )
    # WHEN it resolves the event
    parsed = APIGatewayProxyEvent(event)
    assert parsed.path == "/v1/contacts/user%2F42"
    response = app.resolve(event, FakeLambdaContext("api"))  # type: ignore[arg-type]
    # THEN the route, parameters, query, headers (any case) and context all arrive
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "contact_id": "user%2F42",
        "tag": ["a", "b"],
        "key": KEY,
        "request_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "stage": "local",
        "proxy": "contacts/user%2F42",
    }


# --- Proxy response -> HTTP ------------------------------------------------------------------


def test_a_proxy_response_becomes_the_http_response() -> None:
    response = proxy_response(
        {
            "statusCode": 201,
            "headers": {"X-One": "1", "content-type": "text/plain", "Content-Length": "999"},
            "multiValueHeaders": {
                "Content-Type": ["application/json"],
                "Set-Cookie": ["a=1", "b=2"],
            },
            "body": '{"ok": true}',
            "isBase64Encoded": False,
        }
    )
    assert response.status == 201
    assert response.body == b'{"ok": true}'
    # multiValueHeaders win for a name in both (any case); framing is the server's
    assert sorted(response.headers) == [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-One", "1"),
    ]


def test_a_base64_proxy_response_is_sent_decoded_and_json_is_the_default_type() -> None:
    response = proxy_response(
        {
            "statusCode": "200",
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    )
    assert (response.status, response.body) == (200, b"\x89PNG")
    assert response.header("content-type") == "application/json"
    assert proxy_response({"statusCode": 204}).body == b""


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ("ok", "returned a str, not a proxy response"),
        (None, "returned a NoneType"),
        ({"body": "x"}, "statusCode must be an HTTP status number, not None"),
        ({"statusCode": "OK"}, "statusCode must be"),
        ({"statusCode": 700}, "statusCode must be"),
        ({"statusCode": True}, "statusCode must be"),
        ({"statusCode": 200, "body": {"a": 1}}, "body must be a string"),
        ({"statusCode": 200, "headers": {"X": {"a": 1}}}, r"headers\['X'\] is a dict"),
        ({"statusCode": 200, "headers": {"X": "a\r\nSet-Cookie: b"}}, "line break"),
        ({"statusCode": 200, "multiValueHeaders": {"X": "a"}}, "must be a list"),
        ({"statusCode": 200, "headers": ["X"]}, "must be objects"),
        ({"statusCode": 200, "body": "***", "isBase64Encoded": True}, "not base64"),
        ({"statusCode": 200, "isBase64Encoded": "yes"}, "isBase64Encoded must be"),
    ],
)
def test_anything_but_a_proxy_response_is_refused_with_the_reason(result: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        proxy_response(result)


# --- LocalApi.respond: API Gateway's own answers, without sockets -------------------------------


class Recorder:
    """Stands in for the function: records each event, answers with its own request id."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.result = result
        self.error = error

    def __call__(self, function: str, event: dict[str, Any]) -> Any:
        self.events.append(event)
        if self.error is not None:
            raise self.error
        if self.result is not None:
            return self.result
        return {"statusCode": 200, "body": json.dumps({"function": function})}


def local_api(recorder: Recorder, **options: Any) -> LocalApi:
    return LocalApi(routes_from_template(load_template()), recorder, [KEY], **options)


def body_of(response: LocalResponse) -> Any:
    return json.loads(response.body)


def test_gateway_answers_match_api_gateways_and_never_reach_the_function() -> None:
    recorder = Recorder()
    api = local_api(recorder)
    cases = [
        (("GET", "/v2/events", [("x-api-key", KEY)]), 403, "Missing Authentication Token"),
        (("POST", "/", [("x-api-key", KEY)]), 403, "Missing Authentication Token"),
        (("DELETE", "/v1/unsubscribe", []), 403, "Forbidden"),  # through ANY /v1/{proxy+}
        (("GET", "/v1/workflows", []), 403, "Forbidden"),
        (("GET", "/v1/workflows", [("x-api-key", "wrong")]), 403, "Forbidden"),
        (("GET", "/v1/workflows", [("x-api-key", "")]), 403, "Forbidden"),
    ]
    for (method, target, headers), status, message in cases:
        response = api.respond(method, target, headers, b"")
        assert (response.status, body_of(response)) == (status, {"message": message}), target
        assert response.header("x-amzn-RequestId")
        assert response.header("x-amz-apigw-id")
    too_big = api.respond(
        "POST", "/v1/events", [("x-api-key", KEY)], b"x" * (MAX_PAYLOAD_BYTES + 1)
    )
    assert (too_big.status, body_of(too_big)) == (413, {"message": "Request Entity Too Large"})
    assert recorder.events == []


def test_the_key_header_is_found_in_any_case_and_reaches_the_function() -> None:
    recorder = Recorder()
    response = local_api(recorder).respond("GET", "/v1/workflows?x=1", [("X-API-KEY", KEY)], b"")
    assert response.status == 200
    [event] = recorder.events
    assert event["requestContext"]["identity"]["apiKey"] == KEY
    # the response's request id is the event's
    assert response.header("x-amzn-requestid") == event["requestContext"]["requestId"]


def test_the_query_string_is_decoded_as_api_gateway_does() -> None:
    recorder = Recorder()
    local_api(recorder).respond(
        "GET", "/v1/unsubscribe?a=1&a=2&blank=&flag&sp=x+y&plus=%2B&semi=1;after=2", [], b""
    )
    [event] = recorder.events
    assert event["multiValueQueryStringParameters"] == {
        "a": ["1", "2"],
        "blank": [""],
        "flag": [""],
        "sp": ["x y"],
        "plus": ["+"],
        "semi": ["1"],
        "after": ["2"],
    }
    assert event["queryStringParameters"]["a"] == "2"
    assert event["pathParameters"] is None
    assert event["resource"] == "/v1/unsubscribe"


def test_the_stage_in_the_path_is_optional_and_always_in_the_context() -> None:
    recorder = Recorder()
    api = local_api(recorder, stage="dev")
    for target in ("/dev/v1/unsubscribe", "/v1/unsubscribe"):
        assert api.respond("GET", target, [], b"").status == 200
    assert [e["path"] for e in recorder.events] == ["/v1/unsubscribe"] * 2
    assert [e["requestContext"]["path"] for e in recorder.events] == ["/dev/v1/unsubscribe"] * 2
    assert api.respond("GET", "/prod/v1/unsubscribe", [], b"").status == 403


def test_the_function_gets_api_gateways_forwarding_headers() -> None:
    recorder = Recorder()
    local_api(recorder).respond(
        "GET", "/v1/unsubscribe", [("X-Forwarded-For", "198.51.100.1")], b"", source_ip="127.0.0.1"
    )
    headers = recorder.events[0]["headers"]
    assert headers["X-Forwarded-For"] == "198.51.100.1, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")


def test_a_function_that_raises_is_a_502_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    api = local_api(Recorder(error=RuntimeError("boom")))
    with caplog.at_level(logging.ERROR, logger="journeys.local.api"):
        response = api.respond("GET", "/v1/unsubscribe", [], b"")
    assert (response.status, body_of(response)) == (502, {"message": "Internal server error"})
    assert response.header("x-amzn-ErrorType") == "InternalServerErrorException"
    [record] = caplog.records
    assert "ApiFunction failed on GET /v1/unsubscribe" in record.getMessage()
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


def test_a_malformed_proxy_response_is_a_502_with_the_reason_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = local_api(Recorder(result={"status": 200}))
    with caplog.at_level(logging.ERROR, logger="journeys.local.api"):
        response = api.respond("GET", "/v1/unsubscribe", [], b"")
    assert response.status == 502
    assert "statusCode must be an HTTP status number" in caplog.text


def test_local_routes_need_the_key_and_may_not_shadow_the_templates() -> None:
    def outbox(request: LocalRequest) -> LocalResponse:
        return LocalResponse.json(200, {"path": request.path, "resource": request.resource})

    api = local_api(Recorder(), extra_routes={("GET", "/local/outbox"): outbox})
    # "/local" is also the stage: /local/outbox is not /outbox, so the local route answers
    assert api.respond("GET", "/local/outbox", [], b"").status == 403
    reply = api.respond("GET", "/local/outbox", [("x-api-key", KEY)], b"")
    assert body_of(reply) == {"path": "/local/outbox", "resource": "/local/outbox"}
    with pytest.raises(ValueError, match="declared twice"):
        local_api(Recorder(), extra_routes={("GET", "/v1/unsubscribe"): outbox})


def test_only_loopback_is_served_and_the_stage_must_be_valid() -> None:
    with pytest.raises(ValueError, match=r"serves only 127\.0\.0\.1"):
        local_api(Recorder(), host="0.0.0.0")
    with pytest.raises(ValueError, match="not a valid API Gateway stage name"):
        local_api(Recorder(), stage="a/b")
    with pytest.raises(RuntimeError, match="not started"):
        _ = local_api(Recorder()).url


def test_functions_run_one_invocation_at_a_time_like_a_lambda_environment() -> None:
    # GIVEN functions that note how many invocations overlap (both share one process)
    in_flight, most = 0, 0
    guard = threading.Lock()

    def slow(function: str, event: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight, most
        with guard:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.02)
        with guard:
            in_flight -= 1
        return {"statusCode": 200}

    api = LocalApi(routes_from_template(load_template()), slow, [KEY])
    # WHEN eight requests for the API and import functions arrive at once
    requests = [("GET", "/v1/unsubscribe", []), ("GET", "/v1/imports/i-1", [("x-api-key", KEY)])]
    threads = [threading.Thread(target=api.respond, args=(*requests[n % 2], b"")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN they ran one after another
    assert most == 1


def test_from_template_serves_the_imports_with_their_binary_media_type() -> None:
    recorder = Recorder()
    api = LocalApi.from_template(load_template(), recorder, [KEY])
    headers = [("x-api-key", KEY), ("Content-Type", "text/csv")]
    reply = api.respond("POST", "/v1/imports", headers, b"contact_id\nada\n")
    assert body_of(reply) == {"function": "ImportApiFunction"}
    [event] = recorder.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"contact_id\nada\n"
