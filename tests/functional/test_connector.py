"""The connector Lambda on moto, with payloads taken from a compiled workflow and a real
HTTP endpoint on 127.0.0.1: fetch, webhook and audience steps for a stored contact."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from journeys.connector import ConnectorMisconfigured, ConnectorRejected
from journeys.exceptions import ContactNotFound, TransientError
from journeys.settings import get_settings
from journeys.store import ContactRecord
from tests.helpers.asl import journey_states
from tests.helpers.lambdas import invoke
from tests.helpers.workflows import compile_one
from tests.unit.test_connector import Answer, Endpoint, json_answer, serving

WORKFLOW = """
id: connector-demo
name: Connector demo
trigger:
  event: added_to_cart
steps:
  - type: fetch
    label: Fetch similar products
    url: "{base}/similar/{{{{ contact.id }}}}?plan={{{{ contact.plan }}}}"
    method: POST
    headers: {{X-Source: journeys, X-Sku: "{{{{ event.sku }}}}"}}
    body: {{contact_id: "{{{{ contact.id }}}}", sku: "{{{{ event.sku }}}}", limit: 3}}
    save_as: similar
  - type: webhook
    label: Tell the CRM
    url: "{base}/crm"
    body:
      contact: "{{{{ contact.id }}}}"
      greeting: "Hi {{{{ contact.first_name }}}}"
      top_pick: "{{{{ data.similar['items'][0].sku }}}}"
      workflow: "{{{{ workflow.id }}}}"
  - type: add_to_audience
    label: Retarget on Facebook
    network: facebook
    audience: cart-abandoners
  - type: end
    label: Reminded
"""

EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:journeys-connector-demo:c-1-x"


def execution_input(contact_id: str = "c-1") -> dict[str, Any]:
    """What the router starts an execution with (see compiler/emit.py)."""
    return {
        "contact_id": contact_id,
        "workflow_id": "connector-demo",
        "entry_id": "e-1",
        "iteration": 0,
        "trigger": {"key": "event:added_to_cart", "properties": {"sku": "A 1"}},
        "data": {},
    }


def resolve(parameters: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A Task's Parameters for one state input: the JSONPath fields this compiler emits."""
    context = {"Execution": {"Id": EXECUTION_ID}}
    payload: dict[str, Any] = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            root, path = (context, value[3:]) if value.startswith("$$.") else (state, value[2:])
            found: Any = root
            for part in path.split("."):
                found = found[part]
            payload[key[:-2]] = copy.deepcopy(found)
        else:
            payload[key] = copy.deepcopy(value)
    return payload


class Journey:
    """The compiled workflow's connector Tasks, called in order like the state machine."""

    def __init__(self, tmp_path: Path, base: str) -> None:
        result = compile_one(tmp_path, WORKFLOW.format(base=base), name="connector-demo")
        assert result.ok and result.machine, [d.format() for d in result.diagnostics]
        self.states = journey_states(result.machine)["States"]

    def payload(self, label: str, state_input: dict[str, Any]) -> dict[str, Any]:
        state = self.states[label]
        parameters = state["Parameters"]
        if state["Resource"] == "arn:aws:states:::lambda:invoke":
            assert parameters["FunctionName"] == "${ConnectorFunctionArn}"
            parameters = parameters["Payload"]
        else:  # fetch: the plain function ARN, so its result is stored as is
            assert state["Resource"] == "${ConnectorFunctionArn}"
        return resolve(parameters, state_input)

    def run(self, label: str, state_input: dict[str, Any]) -> Any:
        """Invoke the connector for `label`; apply the Task's ResultPath to the input."""
        result = invoke("connector", self.payload(label, state_input))
        result_path = self.states[label]["ResultPath"]
        if result_path is not None:
            assert result_path.startswith("$.data.")
            state_input["data"][result_path.removeprefix("$.data.")] = result
        return result


@pytest.fixture(autouse=True)
def _direct_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls to 127.0.0.1 never go through a proxy the machine may have configured."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with serving() as server:
        yield server


@pytest.fixture
def journey(
    aws: dict[str, Any], endpoint: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Journey:
    ContactRecord(
        "c-1",
        attributes={"first_name": "Ada", "plan": "pro plus"},
        channels={
            "email": {"address": "ada@example.com", "status": "subscribed"},
            "sms": {"address": "+447700900123", "status": "subscribed"},
        },
    ).save()
    monkeypatch.setenv("AUDIENCE_WEBHOOK_URL", endpoint.url("/audiences"))
    get_settings.cache_clear()
    return Journey(tmp_path, endpoint.base)


def test_fetch_webhook_and_audience_for_a_stored_contact(
    journey: Journey, endpoint: Endpoint
) -> None:
    similar = {"items": [{"sku": "B2", "name": "Blue mug"}], "count": 1}
    endpoint.routes["/similar/c-1"] = json_answer(similar)
    endpoint.routes["/crm"] = Answer(202, b"queued")
    endpoint.routes["/audiences"] = Answer(200, b"ok")
    state = execution_input()

    # fetch: the function returns the JSON itself; the state stores it at data.similar.
    assert journey.run("Fetch similar products", state) == similar
    assert state["data"]["similar"] == similar
    fetched = endpoint.last()
    assert fetched.method == "POST"
    assert fetched.path == "/similar/c-1?plan=pro%20plus"
    assert fetched.json() == {"contact_id": "c-1", "sku": "A 1", "limit": 3}
    assert fetched.headers["X-Source"] == "journeys"
    assert fetched.headers["X-Sku"] == "A 1"

    # webhook: the personalised body, with the data fetched before it.
    assert journey.run("Tell the CRM", state) == {"status": 202}
    posted = endpoint.last()
    assert (posted.method, posted.path) == ("POST", "/crm")
    assert posted.json() == {
        "contact": "c-1",
        "greeting": "Hi Ada",
        "top_pick": "B2",
        "workflow": "connector-demo",
    }

    # add_to_audience: the contact's identifiers go to the audience webhook.
    assert journey.run("Retarget on Facebook", state) == {"status": 200, "action": "add"}
    assert endpoint.last().json() == {
        "action": "add",
        "network": "facebook",
        "audience": "cart-abandoners",
        "contact_id": "c-1",
        "email": "ada@example.com",
        "phone": "+447700900123",
    }
    assert len(endpoint.received) == 3


def test_failures_are_named_for_the_state_machine(journey: Journey) -> None:
    for label in ("Fetch similar products", "Tell the CRM", "Retarget on Facebook"):
        state = journey.states[label]
        assert "TransientError" in state["Retry"][0]["ErrorEquals"]
        assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"]  # on_failure: continue


def test_an_unavailable_endpoint_is_retried(journey: Journey, endpoint: Endpoint) -> None:
    endpoint.routes["/similar/c-1"] = Answer(503, b"maintenance", {"Retry-After": "120"})
    state = execution_input()
    with pytest.raises(TransientError, match="answered 503 Service Unavailable"):
        journey.run("Fetch similar products", state)
    assert "similar" not in state["data"]


def test_a_missing_resource_is_rejected(journey: Journey, endpoint: Endpoint) -> None:
    endpoint.routes["/crm"] = json_answer({"error": "unknown contact c-1"}, 404)
    with pytest.raises(ConnectorRejected, match=r"answered 404 Not Found: .*unknown contact c-1"):
        journey.run("Tell the CRM", execution_input())


def test_audience_without_a_configured_webhook(
    journey: Journey, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDIENCE_WEBHOOK_URL")
    get_settings.cache_clear()
    with pytest.raises(ConnectorMisconfigured, match="AUDIENCE_WEBHOOK_URL"):
        journey.run("Retarget on Facebook", execution_input())
    assert endpoint.received == []


def test_a_deleted_contact_fails_the_step(journey: Journey, endpoint: Endpoint) -> None:
    with pytest.raises(ContactNotFound):
        journey.run("Tell the CRM", execution_input("c-gone"))
    assert endpoint.received == []
