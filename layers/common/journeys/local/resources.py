"""Deploy template.yaml into moto: the local stack's `sam deploy`.

The local stack must run the same resources as AWS, so it reads the same template rather
than a list of its own. `deploy` walks `template.yaml` (and the nested stack of state
machines that `journeys compile` writes, `state_machines/template.json`) the way
CloudFormation would for the resource types Journeys uses, resolving `Ref`, `Fn::GetAtt`
and `Fn::Sub`, and creates each resource through the AWS API of the moto server:

========================================  ============================================
AWS::DynamoDB::Table                       create_table (keys, indexes), TTL
AWS::SQS::Queue                            create_queue (visibility, redrive policy)
AWS::SNS::Topic                            create_topic
AWS::S3::Bucket                            create_bucket
AWS::SES::ConfigurationSet                 create_configuration_set (+ the sender identity)
AWS::Serverless::Function                  create_function (code runs in process, see
                                           `journeys.local.engine`), environment resolved
AWS::Serverless::StateMachine              create_state_machine (definition file with its
                                           DefinitionSubstitutions)
AWS::Serverless::Application               the nested template, deployed recursively
========================================  ============================================

Everything else (the API, whose role `journeys.local.gateway` plays; the layer, whose code
is this process; IAM, KMS, alarms, the dashboard, topic policies, the SES event
destination) has nothing to do on one machine and is listed in `NOT_DEPLOYED` with the
reason. A type in neither list fails the deployment, so a resource added to the template
is never silently missing locally.

Physical names follow CloudFormation's spirit: the template's name when it gives one,
else ``journeys-<stage>-<LogicalId>``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "NOT_DEPLOYED",
    "Deployment",
    "DeploymentError",
    "FunctionSpec",
    "deploy",
    "load_template",
]

ACCOUNT = "123456789012"
ROLE_NAME = "journeys-local"

NOT_DEPLOYED: dict[str, str] = {
    "AWS::Serverless::Api": "served by journeys.local.gateway from the functions' Api events",
    "AWS::Serverless::LayerVersion": "the layer's code is this process",
    "AWS::CloudWatch::Alarm": "nobody is paged on a laptop",
    "AWS::CloudWatch::Dashboard": "the local dashboard reads the statistics API",
    "AWS::KMS::Key": "moto stores data unencrypted either way",
    "AWS::SNS::TopicPolicy": "moto does not enforce resource policies",
    "AWS::SQS::QueuePolicy": "moto does not enforce resource policies",
    "AWS::S3::BucketPolicy": "moto does not enforce resource policies",
    "AWS::SES::ConfigurationSetEventDestination": "moto's SES produces no events to deliver",
    "AWS::IAM::Role": "moto does not enforce IAM; every function shares one local role",
}


class DeploymentError(RuntimeError):
    """The template asks for something the local stack cannot build."""


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, !GetAtt ...) as long-form maps."""


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict[str, Any]:
    """A SAM/CloudFormation template (YAML with short-form tags, or JSON)."""
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    if not isinstance(loaded, dict) or "Resources" not in loaded:
        raise DeploymentError(f"{path}: not a CloudFormation template (no Resources)")
    return loaded


@dataclass(frozen=True)
class FunctionSpec:
    """A function of the template, as the local stack runs it."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout: int
    environment: Mapping[str, str]
    events: Mapping[str, Mapping[str, Any]]


@dataclass
class Deployment:
    """What `deploy` built: physical ids and attributes by logical id."""

    stage: str
    region: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)  # name -> ARN
    skipped: dict[str, str] = field(default_factory=dict)  # logical id -> reason

    def function_named(self, name: str) -> FunctionSpec | None:
        return next((f for f in self.functions.values() if f.name == name), None)

    def environment(self) -> dict[str, str]:
        """The union of every function's environment (they agree on shared names)."""
        merged: dict[str, str] = {}
        for spec in self.functions.values():
            merged.update(spec.environment)
        return merged


class _Resolver:
    """CloudFormation's intrinsic functions over one template's names."""

    def __init__(
        self,
        parameters: Mapping[str, str],
        refs: Mapping[str, str],
        attributes: Mapping[tuple[str, str], str],
        region: str,
    ) -> None:
        self.parameters = parameters
        self.refs = refs
        self.attributes = attributes
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": "journeys-local",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def ref(self, name: str) -> str:
        for table in (self.pseudo, self.parameters, self.refs):
            if name in table:
                return table[name]
        raise _Unresolved(name)

    def get_att(self, name: str, attribute: str) -> str:
        try:
            return self.attributes[(name, attribute)]
        except KeyError:
            raise _Unresolved(f"{name}.{attribute}") from None

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(str(argument))
            if key == "Fn::GetAtt":
                parts = argument if isinstance(argument, list) else str(argument).split(".", 1)
                return self.get_att(str(parts[0]), str(parts[1]))
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                separator, items = argument
                return str(separator).join(str(i) for i in self.resolve(items))
            if key.startswith("Fn::"):
                raise DeploymentError(f"{key} is not supported by the local stack")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument
            local = {k: str(self.resolve(v)) for k, v in variables.items()}
        else:
            text, local = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return local[name]
            if "." in name and name not in self.parameters:
                logical, attribute = name.split(".", 1)
                return self.get_att(logical, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, str(text))


class _Unresolved(LookupError):
    """A name a resource needs has not been created yet."""


@dataclass
class _Clients:
    make: Callable[[str], Any]
    cache: dict[str, Any] = field(default_factory=dict)

    def __call__(self, service: str) -> Any:
        if service not in self.cache:
            self.cache[service] = self.make(service)
        return self.cache[service]


def deploy(
    template_path: Path,
    client: Callable[[str], Any],
    *,
    stage: str = "local",
    region: str = "us-east-1",
    parameters: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Deployment:
    """Create every resource of `template_path` through `client(service)` (boto3 clients
    bound to the moto server). Returns the names the stack and its handlers need."""
    deployment = Deployment(stage=stage, region=region)
    _deploy_template(
        template_path,
        _Clients(client),
        deployment,
        dict(parameters or {}),
        progress or (lambda _message: None),
    )
    return deployment


def _parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if name in given:
            values[name] = str(given[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
    return values


def _deploy_template(
    path: Path,
    clients: _Clients,
    deployment: Deployment,
    parameters: dict[str, str],
    progress: Callable[[str], None],
) -> None:
    template = load_template(path)
    stage = deployment.stage
    values = _parameter_values(template, {"Stage": stage, **parameters})
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    resolver = _Resolver(values, refs, attributes, deployment.region)
    globals_ = (template.get("Globals") or {}).get("Function") or {}

    pending = dict(template["Resources"])
    while pending:
        progressed = False
        for logical_id, resource in list(pending.items()):
            kind = resource.get("Type", "")
            if kind in NOT_DEPLOYED:
                deployment.skipped[logical_id] = NOT_DEPLOYED[kind]
                refs[logical_id] = f"local-{logical_id}"  # referenced, never called
                del pending[logical_id]
                progressed = True
                continue
            builder = _BUILDERS.get(kind)
            if builder is None:
                raise DeploymentError(
                    f"{path.name}: {logical_id} has type {kind}, which the local stack "
                    "cannot deploy; add a builder to journeys/local/resources.py or a "
                    "reason to NOT_DEPLOYED"
                )
            try:
                builder(
                    _Context(
                        logical_id=logical_id,
                        properties=resource.get("Properties") or {},
                        resolver=resolver,
                        clients=clients,
                        deployment=deployment,
                        refs=refs,
                        attributes=attributes,
                        base_dir=path.parent,
                        globals_=globals_,
                        progress=progress,
                    )
                )
            except _Unresolved:
                continue  # depends on a resource not built yet; try again next round
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise DeploymentError(
                f"{path.name}: cannot resolve the references of {', '.join(sorted(pending))}"
            )
    deployment.refs.update(refs)
    deployment.attributes.update(attributes)


@dataclass
class _Context:
    logical_id: str
    properties: Mapping[str, Any]
    resolver: _Resolver
    clients: _Clients
    deployment: Deployment
    refs: dict[str, str]
    attributes: dict[tuple[str, str], str]
    base_dir: Path
    globals_: Mapping[str, Any]
    progress: Callable[[str], None]

    def prop(self, name: str, default: Any = None) -> Any:
        return self.resolver.resolve(self.properties.get(name, default))

    def default_name(self) -> str:
        return f"journeys-{self.deployment.stage}-{self.logical_id}"

    @property
    def region(self) -> str:
        return self.deployment.region


def _build_table(ctx: _Context) -> None:
    name = ctx.prop("TableName") or ctx.default_name()
    arguments = {
        key: ctx.prop(key)
        for key in (
            "AttributeDefinitions",
            "KeySchema",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "StreamSpecification",
        )
        if key in ctx.properties
    }
    arguments["BillingMode"] = ctx.prop("BillingMode") or "PAY_PER_REQUEST"
    dynamodb = ctx.clients("dynamodb")
    dynamodb.create_table(TableName=name, **arguments)
    ttl = ctx.prop("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    ctx.refs[ctx.logical_id] = name
    ctx.attributes[(ctx.logical_id, "Arn")] = (
        f"arn:aws:dynamodb:{ctx.region}:{ACCOUNT}:table/{name}"
    )
    ctx.progress(f"table {name}")


def _build_queue(ctx: _Context) -> None:
    name = ctx.prop("QueueName") or ctx.default_name()
    attributes: dict[str, str] = {}
    for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
        if key in ctx.properties:
            attributes[key] = str(ctx.prop(key))
    if "RedrivePolicy" in ctx.properties:
        attributes["RedrivePolicy"] = json.dumps(ctx.prop("RedrivePolicy"))
    url = ctx.clients("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    ctx.refs[ctx.logical_id] = url
    ctx.attributes[(ctx.logical_id, "Arn")] = f"arn:aws:sqs:{ctx.region}:{ACCOUNT}:{name}"
    ctx.attributes[(ctx.logical_id, "QueueName")] = name
    ctx.attributes[(ctx.logical_id, "QueueUrl")] = url
    ctx.progress(f"queue {name}")


def _build_topic(ctx: _Context) -> None:
    name = ctx.prop("TopicName") or ctx.default_name()
    arn = ctx.clients("sns").create_topic(Name=name)["TopicArn"]
    ctx.refs[ctx.logical_id] = arn
    ctx.attributes[(ctx.logical_id, "TopicArn")] = arn
    ctx.attributes[(ctx.logical_id, "TopicName")] = name
    ctx.progress(f"topic {name}")


def _build_bucket(ctx: _Context) -> None:
    name = str(ctx.prop("BucketName") or ctx.default_name()).lower()
    ctx.clients("s3").create_bucket(Bucket=name)
    ctx.refs[ctx.logical_id] = name
    ctx.attributes[(ctx.logical_id, "Arn")] = f"arn:aws:s3:::{name}"
    ctx.progress(f"bucket {name}")


def _build_configuration_set(ctx: _Context) -> None:
    name = ctx.prop("Name") or ctx.default_name()
    ses = ctx.clients("ses")
    ses.create_configuration_set(ConfigurationSet={"Name": name})
    sender = ctx.resolver.parameters.get("SenderAddress")
    if sender:  # on AWS you verify it once by hand (README, Deploy)
        ses.verify_email_identity(EmailAddress=sender)
    ctx.refs[ctx.logical_id] = name
    ctx.progress(f"SES configuration set {name}")


def _local_role(ctx: _Context) -> str:
    iam = ctx.clients("iam")
    try:
        return str(iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": []}
        return str(
            iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
                "Arn"
            ]
        )


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Runs in process: journeys.local.engine\n")
    return buffer.getvalue()


def _build_function(ctx: _Context) -> None:
    name = ctx.prop("FunctionName") or ctx.default_name()
    variables: dict[str, str] = {}
    for source in (ctx.globals_.get("Environment"), ctx.properties.get("Environment")):
        for key, value in ((source or {}).get("Variables") or {}).items():
            variables[key] = str(ctx.resolver.resolve(value))
    timeout = int(ctx.prop("Timeout") or ctx.globals_.get("Timeout") or 3)
    handler = str(ctx.prop("Handler") or ctx.globals_.get("Handler"))
    code_dir = (ctx.base_dir / str(ctx.prop("CodeUri"))).resolve()
    arn = ctx.clients("lambda").create_function(
        FunctionName=name,
        Runtime=str(ctx.globals_.get("Runtime", "python3.12")),
        Role=_local_role(ctx),
        Handler=handler,
        Code={"ZipFile": _placeholder_zip()},
        Timeout=timeout,
        Environment={"Variables": variables},
    )["FunctionArn"]
    events = {
        event_id: {
            "Type": event["Type"],
            "Properties": ctx.resolver.resolve(event.get("Properties") or {}),
        }
        for event_id, event in (ctx.properties.get("Events") or {}).items()
    }
    ctx.deployment.functions[ctx.logical_id] = FunctionSpec(
        logical_id=ctx.logical_id,
        name=name,
        arn=str(arn),
        code_dir=code_dir,
        handler=handler,
        timeout=timeout,
        environment=variables,
        events=events,
    )
    ctx.refs[ctx.logical_id] = name
    ctx.attributes[(ctx.logical_id, "Arn")] = str(arn)
    ctx.progress(f"function {name}")


def _build_state_machine(ctx: _Context) -> None:
    name = ctx.prop("Name") or ctx.default_name()
    if "DefinitionUri" in ctx.properties:
        definition = (ctx.base_dir / str(ctx.prop("DefinitionUri"))).read_text(encoding="utf-8")
    else:
        definition = json.dumps(ctx.prop("Definition"))
    substitutions = ctx.prop("DefinitionSubstitutions") or {}
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", str(value))
    leftover = re.search(r"\$\{(\w+)\}", definition)
    if leftover:
        raise DeploymentError(
            f"{ctx.logical_id}: the definition uses ${{{leftover.group(1)}}} but "
            "DefinitionSubstitutions does not give it"
        )
    from journeys.local.engine import runnable_on_moto

    sfn = ctx.clients("stepfunctions")
    arn = sfn.create_state_machine(
        name=name,
        definition=json.dumps(runnable_on_moto(json.loads(definition))),
        roleArn=_local_role(ctx),
        type=str(ctx.prop("Type") or "STANDARD"),
    )["stateMachineArn"]
    ctx.deployment.state_machines[name] = str(arn)
    ctx.refs[ctx.logical_id] = str(arn)
    ctx.attributes[(ctx.logical_id, "Arn")] = str(arn)
    ctx.attributes[(ctx.logical_id, "Name")] = name
    ctx.progress(f"state machine {name}")


def _build_application(ctx: _Context) -> None:
    location = ctx.properties.get("Location")
    if not isinstance(location, str):
        raise DeploymentError(f"{ctx.logical_id}: only local nested templates are supported")
    parameters = {k: str(v) for k, v in (ctx.prop("Parameters") or {}).items()}
    _deploy_template(ctx.base_dir / location, ctx.clients, ctx.deployment, parameters, ctx.progress)
    ctx.refs[ctx.logical_id] = f"{ctx.logical_id}-nested"


_BUILDERS: dict[str, Callable[[_Context], None]] = {
    "AWS::DynamoDB::Table": _build_table,
    "AWS::SQS::Queue": _build_queue,
    "AWS::SNS::Topic": _build_topic,
    "AWS::S3::Bucket": _build_bucket,
    "AWS::SES::ConfigurationSet": _build_configuration_set,
    "AWS::Serverless::Function": _build_function,
    "AWS::Serverless::StateMachine": _build_state_machine,
    "AWS::Serverless::Application": _build_application,
}
