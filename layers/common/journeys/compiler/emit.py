"""Emit stage: the intermediate graph to Amazon States Language (JSONPath).

One function per node kind, registered in `EMITTERS`: to learn how a step kind becomes
states, read its function. Conventions every function follows:

- State names come from `ir.state_names` (the author's label, plus a role prefix for
  helper states), so the console graph reads like the YAML.
- Direct service integrations where ASL can do the work (DynamoDB updates, SQS, starting
  executions); a Lambda only for rendering and sending, condition evaluation, time-zone
  and date maths, HTTP calls and the wait-for-event handshake.
- Every resource is a `${Substitution}` filled by SAM's `DefinitionSubstitutions`.
- Every Task retries throttling and transient errors.

Execution input contract (the router starts executions with it):
    {"contact_id": str, "workflow_id": str, "entry_id": str, "iteration": int,
     "trigger": {...the event that started the journey...}, "data": {}}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import PurePath
from typing import Any

from journeys import exceptions
from journeys.compiler import ir
from journeys.compiler import models as m

State = dict[str, Any]
States = dict[str, State]

SUBSTITUTIONS = (
    "ContactsTableName",
    "EventsQueueUrl",
    "SendFunctionArn",
    "EvaluateFunctionArn",
    "ScheduleFunctionArn",
    "WaitForEventFunctionArn",
    "ConnectorFunctionArn",
)

ONE_YEAR_SECONDS = 365 * 86400

_LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    exceptions.TransientError.__name__,
]
_RETRY_BY_SERVICE: dict[str, list[str]] = {
    "lambda": _LAMBDA_TRANSIENT,
    "dynamodb": [
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.ThrottlingException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.InternalServerErrorException",
    ],
    "sqs": ["SQS.SdkClientException", "SQS.AmazonSQSException"],
    "states": ["StepFunctions.SdkClientException", "StepFunctions.AWSStepFunctionsException"],
}


def retry(service: str) -> list[dict[str, Any]]:
    return [
        {
            "ErrorEquals": _RETRY_BY_SERVICE[service],
            "IntervalSeconds": 2,
            "MaxAttempts": 6,
            "BackoffRate": 2.0,
            "JitterStrategy": "FULL",
        }
    ]


def sub(name: str) -> str:
    assert name in SUBSTITUTIONS, name
    return "${" + name + "}"


def json_path_key(key: str) -> str:
    """Step keys may hold '-', which JSONPath dot notation does not allow."""
    return key.replace("-", "_")


class Context:
    """What an emitter function may ask about the journey being compiled."""

    def __init__(self, journey: ir.Journey) -> None:
        self.journey = journey
        self.workflow = journey.workflow

    def name(self, key: str) -> str:
        return ir.entry_name(key, self.journey)

    def next(self, key: str | None) -> dict[str, Any]:
        assert key is not None
        return {"Next": self.name(key)}

    def comment(self, node: ir.Node, what: str) -> str:
        text = f"[{node.key}] {what}"
        return f"{text}. {node.step.note}" if getattr(node.step, "note", None) else text

    def base_payload(self, node: ir.Node) -> dict[str, Any]:
        return {
            "contact_id.$": "$.contact_id",
            "workflow_id": self.workflow.id,
            "step_id": node.key,
            "step_label": node.label,
            "execution_id.$": "$$.Execution.Id",
            "trigger.$": "$.trigger",
            "data.$": "$.data",
        }

    def time_zone(self, step: Any = None) -> str | None:
        return getattr(step, "time_zone", None) or self.workflow.settings.time_zone

    def finish(self, node: ir.Node, name: str, comment: str) -> State:
        """A journey ending: Succeed, or inside the goal race a Fail the race catches."""
        if self.journey.races and node.key not in self.journey.after_goal:
            return {
                "Type": "Fail",
                "Comment": comment,
                "Error": exceptions.COMPLETED,
                "Cause": name,
            }
        return {"Type": "Succeed", "Comment": comment}


def lambda_task(
    ctx: Context, function: str, payload: dict[str, Any], node: ir.Node, what: str
) -> State:
    return {
        "Type": "Task",
        "Comment": ctx.comment(node, what),
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": sub(function), "Payload": payload},
        "Retry": retry("lambda"),
    }


def contact_update(
    ctx: Context,
    node: ir.Node,
    what: str,
    expression: str,
    names: dict[str, str],
    values: dict[str, Any] | None = None,
) -> State:
    parameters: dict[str, Any] = {
        "TableName": sub("ContactsTableName"),
        "Key": {"contact_id": {"S.$": "$.contact_id"}},
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
    }
    if values:
        parameters["ExpressionAttributeValues"] = values
    return {
        "Type": "Task",
        "Comment": ctx.comment(node, what),
        "Resource": "arn:aws:states:::dynamodb:updateItem",
        "Parameters": parameters,
        "ResultPath": None,
        "Retry": retry("dynamodb"),
        **ctx.next(node.next),
    }


def on_failure(state: State, ctx: Context, node: ir.Node) -> State:
    """`on_failure: continue` (the default): a failed call does not end the journey."""
    if getattr(node.step, "on_failure", "continue") == "continue":
        state.setdefault("Catch", []).append(
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.last_error", **ctx.next(node.next)}
        )
    return state


def dynamo_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    return {"S": str(value)}


def condition_json(condition: Any) -> Any:
    return condition.model_dump(mode="json", by_alias=True, exclude_none=True)


def where_json(where: m.Where) -> dict[str, Any]:
    """Property filters as the runtime reads them: bare values stay, comparisons dump."""
    return {
        key: condition_json(value) if isinstance(value, m.Comparison) else value
        for key, value in where.items()
    }


# --- Actions ------------------------------------------------------------------------------


def emit_send(node: ir.Node, ctx: Context) -> States:
    step = node.step
    channel = "team" if node.kind == "notify_team" else m.SEND_CHANNELS[node.kind]
    payload = {
        **ctx.base_payload(node),
        "channel": channel,
        "template": step.template,
        # With the execution and step, names one attempt to send: Lambda retries of it
        # must not send twice; a deferred send or a loop round re-enters with a new time.
        "state_entered_at.$": "$$.State.EnteredTime",
    }
    if getattr(step, "to_attribute", None):
        payload["to_attribute"] = step.to_attribute
    if getattr(step, "to", None):
        payload["to"] = step.to
    settings = ctx.workflow.settings
    policy: dict[str, Any] = {}
    to_contact = node.kind != "notify_team"  # alerts to the team ignore the contact's limits
    if settings.quiet_hours is not None and to_contact:
        policy["quiet_hours"] = settings.quiet_hours.model_dump(mode="json")
    if settings.frequency_cap is not None and to_contact:
        policy["frequency_cap"] = {
            "max": settings.frequency_cap.max,
            "per_seconds": settings.frequency_cap.per.seconds,
        }
    if ctx.time_zone():
        policy["default_time_zone"] = ctx.time_zone()
    if policy and to_contact:
        payload["policy"] = policy
    what = f"Send {channel} using template {step.template}"
    task = lambda_task(ctx, "SendFunctionArn", payload, node, what)
    task["ResultPath"] = None
    task.update(ctx.next(node.next))
    states: States = {node.label: task}
    if ctx.journey.defers_sends and to_contact:
        # The send function raises SendDeferred("<ISO time>") during quiet hours or over the
        # frequency cap; we wait until then and try again.
        defer, hold = ir.defer_name(node.label), ir.hold_name(node.label)
        task["Catch"] = [
            {
                "ErrorEquals": [exceptions.SendDeferred.__name__],
                "ResultPath": "$.deferral",
                "Next": defer,
            }
        ]
        states[defer] = {
            "Type": "Pass",
            "Comment": ctx.comment(node, "Read when sending is allowed again"),
            "Parameters": {"until.$": "States.StringToJson($.deferral.Cause)"},
            "ResultPath": "$.deferral",
            "Next": hold,
        }
        states[hold] = {
            "Type": "Wait",
            "Comment": ctx.comment(node, "Hold the message until quiet hours or the cap end"),
            "TimestampPath": "$.deferral.until.errorMessage",
            "Next": node.label,
        }
    on_failure(task, ctx, node)
    return states


def emit_connector(node: ir.Node, ctx: Context) -> States:
    step = node.step
    payload = {
        **ctx.base_payload(node),
        "action": node.kind,
        "url": step.url,
        "method": step.method,
    }
    if step.headers:
        payload["headers"] = step.headers
    if step.body is not None:
        payload["body"] = step.body
    what = f"{step.method} {step.url}"
    if node.kind == "fetch":
        # The plain Lambda ARN form returns the function's result as is, so the fetched
        # data lands at $.data.<save_as> without an envelope.
        task: State = {
            "Type": "Task",
            "Comment": ctx.comment(node, f"Fetch {step.url} into data.{step.save_as}"),
            "Resource": sub("ConnectorFunctionArn"),
            "Parameters": payload,
            "ResultPath": f"$.data.{step.save_as}",
            "Retry": retry("lambda"),
            **ctx.next(node.next),
        }
    else:
        task = lambda_task(ctx, "ConnectorFunctionArn", payload, node, f"Call webhook {what}")
        task.update({"ResultPath": None, **ctx.next(node.next)})
    return {node.label: on_failure(task, ctx, node)}


def emit_audience(node: ir.Node, ctx: Context) -> States:
    step = node.step
    verb = "Add to" if node.kind == "add_to_audience" else "Remove from"
    payload = {
        **ctx.base_payload(node),
        "action": node.kind,
        "network": step.network,
        "audience": step.audience,
    }
    task = lambda_task(
        ctx,
        "ConnectorFunctionArn",
        payload,
        node,
        f"{verb} {step.network} audience {step.audience}",
    )
    task.update({"ResultPath": None, **ctx.next(node.next)})
    return {node.label: on_failure(task, ctx, node)}


def emit_add_tag(node: ir.Node, ctx: Context) -> States:
    return {
        node.label: contact_update(
            ctx,
            node,
            f"Add tag {node.step.tag}",
            "SET #tags.#tag = :now",
            {"#tags": "tags", "#tag": node.step.tag},
            {":now": {"S.$": "$$.State.EnteredTime"}},
        )
    }


def emit_remove_tag(node: ir.Node, ctx: Context) -> States:
    return {
        node.label: contact_update(
            ctx,
            node,
            f"Remove tag {node.step.tag}",
            "REMOVE #tags.#tag",
            {"#tags": "tags", "#tag": node.step.tag},
        )
    }


def emit_set_attribute(node: ir.Node, ctx: Context) -> States:
    step = node.step
    if step.shift is not None:
        payload = {
            **ctx.base_payload(node),
            "action": "shift_date",
            "attribute": step.attribute,
            # The text goes too: "1 month" means a calendar month to the schedule function.
            "shift": step.shift.text,
            "shift_seconds": step.shift.seconds,
            "time_zone": ctx.time_zone(),
        }
        task = lambda_task(
            ctx,
            "ScheduleFunctionArn",
            payload,
            node,
            f"Move date {step.attribute} by {step.shift.text}",
        )
        task.update({"ResultPath": None, **ctx.next(node.next)})
        return {node.label: task}
    return {
        node.label: contact_update(
            ctx,
            node,
            f"Set {step.attribute} = {step.value!r}",
            "SET #attributes.#name = :value",
            {"#attributes": "attributes", "#name": step.attribute},
            {":value": dynamo_value(step.value)},
        )
    }


def emit_change_score(node: ir.Node, ctx: Context) -> States:
    step = node.step
    return {
        node.label: contact_update(
            ctx,
            node,
            f"Change {step.score} by {step.by:+d}",
            "SET #attributes.#score = if_not_exists(#attributes.#score, :zero) + :by",
            {"#attributes": "attributes", "#score": step.score},
            {":zero": {"N": "0"}, ":by": {"N": str(step.by)}},
        )
    }


def emit_set_funnel_stage(node: ir.Node, ctx: Context) -> States:
    return {
        node.label: contact_update(
            ctx,
            node,
            f"Move to funnel stage {node.step.stage}",
            "SET #attributes.#stage = :stage",
            {"#attributes": "attributes", "#stage": "funnel_stage"},
            {":stage": {"S": node.step.stage}},
        )
    }


def emit_subscription(node: ir.Node, ctx: Context) -> States:
    status = "subscribed" if node.kind == "subscribe" else "unsubscribed"
    return {
        node.label: contact_update(
            ctx,
            node,
            f"Mark {status} to list {node.step.list}",
            "SET #lists.#list = :status",
            {"#lists": "lists", "#list": node.step.list},
            {":status": {"S": status}},
        )
    }


def emit_start_workflow(node: ir.Node, ctx: Context) -> States:
    target = node.step.workflow
    # Through the events queue rather than StartExecution: the router applies the target's
    # re-entry rules and names the execution, and workflows that start each other do not
    # make a dependency cycle in the SAM template.
    body = {
        "type": "enter_workflow",
        "workflow_id": target,
        "contact_id.$": "$.contact_id",
        "event_id.$": f"States.Format('{{}}:{json_path_key(node.key)}', $$.Execution.Id)",
        "source": {
            "workflow_id": ctx.workflow.id,
            "step_id": node.key,
            "execution_id.$": "$$.Execution.Id",
        },
    }
    return {
        node.label: {
            "Type": "Task",
            "Comment": ctx.comment(node, f"Move the contact to workflow {target}"),
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": sub("EventsQueueUrl"), "MessageBody": body},
            "ResultPath": None,
            "Retry": retry("sqs"),
            **ctx.next(node.next),
        }
    }


# --- Flow control -------------------------------------------------------------------------


def emit_wait(node: ir.Node, ctx: Context) -> States:
    return {
        node.label: {
            "Type": "Wait",
            "Comment": ctx.comment(node, f"Wait {node.step.duration.text}"),
            "Seconds": node.step.duration.seconds,
            **ctx.next(node.next),
        }
    }


def emit_wait_until(node: ir.Node, ctx: Context) -> States:
    step = node.step
    if step.date is not None:
        moment = step.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            node.label: {
                "Type": "Wait",
                "Comment": ctx.comment(node, f"Wait until {moment}"),
                "Timestamp": moment,
                **ctx.next(node.next),
            }
        }
    payload = {
        **ctx.base_payload(node),
        "action": "date",
        **({"attribute": step.attribute} if step.attribute else {}),
        **({"event_property": step.event_property} if step.event_property else {}),
        "offset_seconds": step.offset.seconds if step.offset else 0,
        "at": step.at,
        "time_zone": ctx.time_zone(step),
    }
    offset = f" {step.offset.text}" if step.offset else ""
    source = step.attribute or f"event.{step.event_property}"
    return scheduled_wait(node, ctx, payload, f"Wait until {source}{offset}")


def emit_wait_for_window(node: ir.Node, ctx: Context) -> States:
    step = node.step
    payload = {
        **ctx.base_payload(node),
        "action": "window",
        "days": step.days,
        "start": step.start,
        "end": step.end,
        "best_time": step.best_time,
        "time_zone": ctx.time_zone(step),
    }
    return scheduled_wait(
        node, ctx, payload, f"Wait for {','.join(step.days)} {step.start}-{step.end} local time"
    )


def scheduled_wait(node: ir.Node, ctx: Context, payload: dict[str, Any], what: str) -> States:
    schedule = lambda_task(
        ctx,
        "ScheduleFunctionArn",
        payload,
        node,
        "Compute when to continue (time zones and calendars)",
    )
    schedule.update(
        {
            "ResultSelector": {"until.$": "$.Payload.until"},
            "ResultPath": "$.schedule",
            "Next": node.label,
        }
    )
    return {
        ir.schedule_name(node.label): schedule,
        node.label: {
            "Type": "Wait",
            "Comment": ctx.comment(node, what),
            "TimestampPath": "$.schedule.until",
            **ctx.next(node.next),
        },
    }


def emit_wait_for_event(node: ir.Node, ctx: Context) -> States:
    step = node.step
    yes, no = node.branches
    payload = {
        **ctx.base_payload(node),
        "action": "wait",
        "task_token.$": "$$.Task.Token",
        "signal": f"event:{step.event}",
        "timeout_seconds": step.timeout.seconds,
        "entered_at.$": "$$.State.EnteredTime",
    }
    if step.where:
        payload["where"] = where_json(step.where)
    return {
        node.label: {
            "Type": "Task",
            "Comment": ctx.comment(node, f"Wait up to {step.timeout.text} for {step.event}"),
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": sub("WaitForEventFunctionArn"), "Payload": payload},
            "TimeoutSeconds": step.timeout.seconds,
            "ResultPath": "$.awaited",
            "Retry": retry("lambda"),
            "Catch": [
                {"ErrorEquals": ["States.Timeout"], "ResultPath": None, **ctx.next(no.target)}
            ],
            **ctx.next(yes.target),
        }
    }


def emit_decision(node: ir.Node, ctx: Context) -> States:
    yes, no = node.branches
    paths = [{"branch": "yes", "condition": condition_json(yes.condition)}]
    return evaluated_choice(node, ctx, paths, [("yes", yes)], no)


def emit_split(node: ir.Node, ctx: Context) -> States:
    *paths, otherwise = node.branches
    keyed = [(str(index + 1), branch) for index, branch in enumerate(paths)]
    conditions = [{"branch": key, "condition": condition_json(b.condition)} for key, b in keyed]
    return evaluated_choice(node, ctx, conditions, keyed, otherwise)


def evaluated_choice(
    node: ir.Node,
    ctx: Context,
    paths: list[dict[str, Any]],
    keyed: list[tuple[str, ir.Branch]],
    default: ir.Branch,
) -> States:
    payload = {**ctx.base_payload(node), "entered_at.$": "$$.Execution.StartTime", "paths": paths}
    if ctx.time_zone():
        payload["default_time_zone"] = ctx.time_zone()  # is_today for contacts without one
    check = lambda_task(
        ctx, "EvaluateFunctionArn", payload, node, "Evaluate the condition on fresh contact data"
    )
    check.update(
        {
            "ResultSelector": {"branch.$": "$.Payload.branch"},
            "ResultPath": "$.decision",
            "Next": node.label,
        }
    )
    choices = [
        {
            "Variable": "$.decision.branch",
            "StringEquals": key,
            "Comment": branch.label,
            **ctx.next(branch.target),
        }
        for key, branch in keyed
    ]
    return {
        ir.check_name(node.label): check,
        node.label: {
            "Type": "Choice",
            "Comment": ctx.comment(node, "Take the matching path"),
            "Choices": choices,
            "Default": ctx.name(default.target),
        },
    }


def emit_ab_split(node: ir.Node, ctx: Context) -> States:
    choices, cumulative = [], 0
    for branch in node.branches[:-1]:
        cumulative += branch.weight or 0
        choices.append(
            {
                "Variable": "$.draw.roll",
                "NumericLessThan": cumulative,
                "Comment": f"{branch.label} ({branch.weight}%)",
                **ctx.next(branch.target),
            }
        )
    last = node.branches[-1]
    weights = ", ".join(f"{b.label} {b.weight}%" for b in node.branches)
    return {
        ir.draw_name(node.label): {
            "Type": "Pass",
            "Comment": ctx.comment(node, "Draw a number from 0 to 99"),
            "Parameters": {"roll.$": "States.MathRandom(0, 100)"},
            "ResultPath": "$.draw",
            "Next": node.label,
        },
        node.label: {
            "Type": "Choice",
            "Comment": ctx.comment(node, f"Random split: {weights}"),
            "Choices": choices,
            "Default": ctx.name(last.target),
        },
    }


def emit_goto(node: ir.Node, ctx: Context) -> States:
    if not node.step.max_times:
        return {}  # a plain jump is only an edge: other states point at its target
    counter = f"$.loops.{ctx.journey.loop_counters[node.key]}"
    target = node.branches[0].target
    count = ir.count_name(node.label)
    return {
        node.label: {
            "Type": "Choice",
            "Comment": ctx.comment(node, f"Go back at most {node.step.max_times} times"),
            "Choices": [
                {
                    "Variable": f"{counter}.n",
                    "NumericLessThan": node.step.max_times,
                    "Comment": "Again",
                    "Next": count,
                }
            ],
            "Default": ctx.name(node.next) if node.next else count,
        },
        count: {
            "Type": "Pass",
            "Comment": ctx.comment(node, "Count this round"),
            "Parameters": {"n.$": f"States.MathAdd({counter}.n, 1)"},
            "ResultPath": counter,
            **ctx.next(target),
        },
    }


def emit_repeat(node: ir.Node, ctx: Context) -> States:
    step, label = node.step, node.label
    done = ir.repeat_done_name(label)
    states: States = {}
    start_next = label
    if step.after:
        wait = ir.repeat_wait_name(node)
        states[wait] = {
            "Type": "Wait",
            "Comment": ctx.comment(node, "Pause before the next run"),
            "Seconds": step.after.seconds,
            "Next": label,
        }
        start_next = wait
    if step.times:
        states = {
            ir.repeat_more_name(label): {
                "Type": "Choice",
                "Comment": ctx.comment(node, f"Run at most {step.times} times in all"),
                "Choices": [
                    {
                        "Variable": "$.iteration",
                        "NumericLessThan": step.times - 1,
                        "Comment": "More runs",
                        "Next": start_next,
                    }
                ],
                "Default": done,
            },
            **states,
        }
    states[label] = {
        "Type": "Task",
        "Comment": ctx.comment(node, "Continue as a new execution with a fresh history"),
        "Resource": "arn:aws:states:::states:startExecution",
        "Parameters": {
            "StateMachineArn.$": "$$.StateMachine.Id",
            "Name.$": "States.Format('{}-r{}', $.entry_id, States.MathAdd($.iteration, 1))",
            "Input": {
                "contact_id.$": "$.contact_id",
                "workflow_id.$": "$.workflow_id",
                "entry_id.$": "$.entry_id",
                "iteration.$": "States.MathAdd($.iteration, 1)",
                "trigger.$": "$.trigger",
                "data": {},
                "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
            },
        },
        "ResultPath": None,
        "Retry": retry("states"),
        # A retried start finding its execution already there is the run we wanted.
        "Catch": [
            {
                "ErrorEquals": ["StepFunctions.ExecutionAlreadyExistsException"],
                "ResultPath": None,
                "Next": done,
            }
        ],
        "Next": done,
    }
    states[done] = ctx.finish(node, done, ctx.comment(node, "This run is over"))
    return states


def emit_end(node: ir.Node, ctx: Context) -> States:
    return {node.label: ctx.finish(node, node.label, ctx.comment(node, "The journey ends here"))}


Emitter = Callable[[ir.Node, Context], States]

EMITTERS: dict[str, Emitter] = {
    **{kind: emit_send for kind in ir.SEND_KINDS},
    "webhook": emit_connector,
    "fetch": emit_connector,
    "add_to_audience": emit_audience,
    "remove_from_audience": emit_audience,
    "add_tag": emit_add_tag,
    "remove_tag": emit_remove_tag,
    "set_attribute": emit_set_attribute,
    "change_score": emit_change_score,
    "set_funnel_stage": emit_set_funnel_stage,
    "subscribe": emit_subscription,
    "unsubscribe": emit_subscription,
    "start_workflow": emit_start_workflow,
    "wait": emit_wait,
    "wait_until": emit_wait_until,
    "wait_for_window": emit_wait_for_window,
    "wait_for_event": emit_wait_for_event,
    "decision": emit_decision,
    "split": emit_split,
    "ab_split": emit_ab_split,
    "goto": emit_goto,
    "repeat": emit_repeat,
    "end": emit_end,
}


# --- The whole machine --------------------------------------------------------------------


def emit_watch(signal: m.Signal, error: str, purpose: str, ctx: Context) -> dict[str, Any]:
    """A Parallel branch that waits for the goal or an exit, then fails with `error` so the
    race ends the journey wherever the contact is."""
    watch = ir.watch_name(signal.label)
    payload: dict[str, Any] = {
        "action": "watch",
        "purpose": purpose,
        "task_token.$": "$$.Task.Token",
        "contact_id.$": "$.contact_id",
        "workflow_id": ctx.workflow.id,
        "execution_id.$": "$$.Execution.Id",
        "signal": signal.key(),
        "entered_at.$": "$$.Execution.StartTime",
    }
    if signal.where:
        payload["where"] = where_json(signal.where)
    return {
        "StartAt": watch,
        "States": {
            watch: {
                "Type": "Task",
                "Comment": f"[{purpose}] Wait for {signal.key()} at any point of the journey",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": sub("WaitForEventFunctionArn"), "Payload": payload},
                "TimeoutSeconds": ONE_YEAR_SECONDS,
                "Retry": retry("lambda"),
                "Next": signal.label,
            },
            signal.label: {
                "Type": "Fail",
                "Comment": f"[{purpose}] {signal.label}",
                "Error": error,
                "Cause": signal.label,
            },
        },
    }


def emit_journey(journey: ir.Journey) -> dict[str, Any]:
    ctx = Context(journey)
    body: States = {}
    start = ctx.name(journey.start)
    counters: States = {}
    if journey.counts_loops:
        # Set before the goal race, so the goal's `then` steps keep them too: the race's
        # Catch continues from its own input, not from where the journey was.
        counters[ir.START_STATE] = {
            "Type": "Pass",
            "Comment": "Start the loop counters",
            "Result": {name: {"n": 0} for name in journey.loop_counters.values()},
            "ResultPath": "$.loops",
        }
    after_goal: States = {}
    for node in journey.nodes.values():
        scope = after_goal if node.key in journey.after_goal else body
        scope.update(EMITTERS[node.kind](node, ctx))
    workflow = journey.workflow
    # Only the file name: the output must not depend on where the compiler was run from.
    source = PurePath(journey.file).name
    comment = f"{workflow.name}. Generated by `journeys compile` from {source}; do not edit."
    if not journey.races:
        if counters:
            counters[ir.START_STATE]["Next"] = start
            return {"Comment": comment, "StartAt": ir.START_STATE, "States": {**counters, **body}}
        return {"Comment": comment, "StartAt": start, "States": body}
    branches = [{"StartAt": start, "States": body}]
    # (error caught, first state after it, the Succeed state that ends it, its comment)
    catches: list[tuple[str, str, str, str]] = []
    if workflow.goal is not None:
        branches.append(emit_watch(workflow.goal, exceptions.GOAL_REACHED, "goal", ctx))
        follow_up = ctx.name(journey.goal_start) if journey.goal_start else None
        catches.append(
            (
                exceptions.GOAL_REACHED,
                follow_up or ir.JOURNEY_GOAL_REACHED,
                ir.JOURNEY_GOAL_REACHED,
                "Converted: counts toward the goal",
            )
        )
    for exit_signal in journey.exits:
        branches.append(emit_watch(exit_signal, exceptions.EXITED, "exit", ctx))
    if journey.exits:
        catches.append(
            (
                exceptions.EXITED,
                ir.JOURNEY_EXITED,
                ir.JOURNEY_EXITED,
                "An exit criterion ended the journey",
            )
        )
    catches.append(
        (
            exceptions.COMPLETED,
            ir.JOURNEY_COMPLETED,
            ir.JOURNEY_COMPLETED,
            "The contact reached an end",
        )
    )
    states: States = {
        workflow.name: {
            "Type": "Parallel",
            "Comment": "The journey races its goal and exit criteria: whichever ends first "
            "stops the others",
            "Branches": branches,
            "ResultPath": None,
            "Catch": [
                {"ErrorEquals": [error], "ResultPath": "$.outcome", "Next": target}
                for error, target, _, _ in catches
            ],
            "Next": ir.JOURNEY_COMPLETED,
        }
    }
    states.update(after_goal)
    ends_in_goal = any(ir.GOAL_DONE in journey.nodes[k].successors for k in journey.after_goal)
    for _, first, ending, what in catches:
        if first == ending or ending != ir.JOURNEY_GOAL_REACHED or ends_in_goal:
            states[ending] = {"Type": "Succeed", "Comment": what}
    if counters:
        counters[ir.START_STATE]["Next"] = workflow.name
        return {"Comment": comment, "StartAt": ir.START_STATE, "States": {**counters, **states}}
    return {"Comment": comment, "StartAt": workflow.name, "States": states}
