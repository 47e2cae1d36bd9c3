"""Fleet commands: ``infra`` (render, validate, package, deploy, destroy),
``ami`` (bake) and ``fleet`` (launch, scale, ls, stop, autoscale (dry run),
failover, plan, emulate). Progress goes to stderr; each command's result to stdout once,
a table or line by default, JSON with ``--output json`` (``output.render``).
``fleet emulate`` is the exception: a foreground loop until Ctrl-C, no result.
boto3-heavy modules are imported inside the commands."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import BaseModel, RootModel, model_serializer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from ..fleet.settings import FleetSettings
from .context import fleet_settings
from .output import JSON, OUTPUT, OutputFormat, render
from .project import DeployAnswers

if TYPE_CHECKING:
    from ..fleet.instances import InstanceInfo
    from ..fleet.plan import Plan

console = Console(stderr=True)

infra_app = typer.Typer(help="The CloudFormation stack: render, validate, package the Lambda, deploy, destroy.")
ami_app = typer.Typer(help="The worker AMI.")
fleet_app = typer.Typer(help="Worker instances: launch, scale, list, stop, autoscaling dry run, plan.")


def _settings(region: str | None = None, *, offline: bool = False) -> FleetSettings:
    """The fleet's settings (no database, so no tunnel); ``offline``: the
    command reads files only, so an unreachable endpoint is no error."""
    s = fleet_settings(check_endpoint=not offline)
    return s.model_copy(update={"region": region}) if region else s


def _fail(message: str, hint: str = "") -> NoReturn:
    from .errors import fail

    fail(message, hint, code=2)


# --- infra -----------------------------------------------------------------------------
@infra_app.command("render")
def infra_render(
    check: bool = typer.Option(False, "--check", help="Only compare with the files; exit 1 if they differ."),
    template: Path = typer.Option(None, help="Template to write (default infra/template.yaml)."),
    elasticmq: Path = typer.Option(None, help="ElasticMQ config to write (default infra/local/elasticmq.conf)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Render the CloudFormation template and elasticmq.conf from the pipeline registry.

    The registry holds the built-in pipelines and installed plugins; the
    fleet settings give the defaults.

    Example: specfleet infra render --check
    """
    from ..fleet.deploy import ELASTICMQ_CONF, TEMPLATE
    from ..fleet.template import render as render_template
    from ..fleet.template import render_elasticmq
    from ..fleet.throughput import ThroughputError

    s = _settings(offline=True)
    try:
        outputs = {template or TEMPLATE: render_template(s), elasticmq or ELASTICMQ_CONF: render_elasticmq(s)}
    except ThroughputError as err:
        _fail(str(err))
    stale = [str(path) for path, text in outputs.items() if not path.exists() or path.read_text() != text]
    if check:
        render(Rendered(stale=stale), _rendered_view, output, as_json)
        raise typer.Exit(1 if stale else 0)
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    render(Rendered(written=[str(p) for p in outputs], changed=stale), _rendered_view, output, as_json)


class Rendered(BaseModel):
    """``infra render``: the files written and those that changed; ``--check``: the stale ones."""

    written: list[str] | None = None
    changed: list[str] | None = None
    stale: list[str] | None = None

    @model_serializer(mode="wrap")
    def _only_set(self, dump: Any) -> dict[str, Any]:
        # --check says "stale", a render "written" and "changed": as before.
        return {k: v for k, v in dump(self).items() if v is not None}


def _rendered_view(r: Rendered) -> Iterator[str]:
    if r.written is not None:
        yield f"wrote {', '.join(r.written)} ({len(r.changed or [])} changed)"
    elif r.stale:
        yield f"[red]out of date[/]: {', '.join(r.stale)} (run `specfleet infra render`)"
    else:
        yield "[green]rendered files are up to date[/]"


@infra_app.command("validate")
def infra_validate(
    template: Path = typer.Option(None, help="Template (default infra/template.yaml)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Lint the template with cfn-lint; exit 1 on any finding.

    Example: specfleet infra validate
    """
    from ..fleet.deploy import TEMPLATE, validate

    path = template or TEMPLATE
    with console.status(f"cfn-lint {path}"):
        findings = validate(path)
    render(Validated(template=str(path), findings=findings), _validated_view, output, as_json)
    if findings:
        raise typer.Exit(1)


class Validated(BaseModel):
    template: str
    findings: list[str]


def _validated_view(v: Validated) -> Iterator[str]:
    yield from (escape(f) for f in v.findings)
    if not v.findings:
        yield "[green]cfn-lint clean[/]"


@infra_app.command("package")
def infra_package(
    out: Path = typer.Option(Path("dist/lambda"), help="Where to write the zip."),
    dependencies: bool = typer.Option(True, help="Install the writer's requirements into the zip (needs PyPI)."),
    upload: bool = typer.Option(True, help="Upload to the artifact bucket."),
    artifact_bucket: str | None = typer.Option(None, help="Bucket (default SPECFLEET_FLEET_ARTIFACT_BUCKET)."),
    region: str | None = typer.Option(None),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Zip lambdas/ + specfleet/ + requirements for the status-writer Lambda.

    Example: specfleet infra package --artifact-bucket my-specfleet-artifacts
    """
    from ..fleet.deploy import build_package, upload_package

    with console.status("building the Lambda package"):
        zip_path = build_package(out, with_dependencies=dependencies)
    result = Packaged(zip=str(zip_path), bytes=zip_path.stat().st_size)
    if upload:
        with console.status("uploading"):
            result.bucket, result.key = upload_package(_settings(region), zip_path, artifact_bucket)
    render(result, _packaged_view, output, as_json)


class Packaged(BaseModel):
    zip: str
    bytes: int
    bucket: str | None = None
    key: str | None = None


def _packaged_view(p: Packaged) -> Iterator[str]:
    yield f"built {p.zip} ({p.bytes} bytes)"
    if p.key:
        yield f"uploaded to s3://{p.bucket}/{p.key} (use --artifact-key {p.key})"


@infra_app.command("deploy")
def infra_deploy(
    region: str | None = typer.Option(None, help="AWS region."),
    data_bucket: str | None = typer.Option(None, help="Globally unique bucket name for results."),
    vpc_id: str | None = typer.Option(None, help="VPC for workers, the database and the writer (emulator: default VPC)."),
    subnet_ids: str | None = typer.Option(None, help="Comma-separated subnets, two AZs at least (emulator: the VPC's)."),
    ami_id: str | None = typer.Option(None, help="Worker AMI, `specfleet ami bake` (emulator: a stand-in image)."),
    artifact_bucket: str | None = typer.Option(None, help="Bucket holding the Lambda zip."),
    artifact_key: str | None = typer.Option(None, help="Key of the zip (`specfleet infra package`); empty: no writer."),
    queue_prefix: str | None = typer.Option(None, help="Prefix for queue and topic names."),
    stack_name: str | None = typer.Option(None, help="Stack name (default SPECFLEET_FLEET_STACK_NAME)."),
    emulator: bool | None = typer.Option(None, "--emulator/--aws", help="Leave out what moto cannot create (local emulator only)."),
    param: list[str] = typer.Option([], help="Extra template parameters as Key=Value."),
    guided: bool = typer.Option(False, "--guided", "-g", help="Ask for each value and save the answers to specfleet.toml."),
    env_file: Path | None = typer.Option(None, help="Also write the resulting settings as KEY=VALUE lines."),
    confirm_changeset: bool | None = typer.Option(
        None, "--confirm-changeset/--no-confirm-changeset",
        help="Show the change set and ask before changing anything (default: with --guided)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Create or update the stack and print the settings it yields.

    Values come from the options, else from specfleet.toml's [deploy] table
    (written by --guided); the stack's settings are saved to its [env] table,
    which every later command reads.

    Example: specfleet infra deploy --guided
    """
    from ..fleet.deploy import outputs_to_env
    from . import project as project_file

    try:
        project = project_file.load() or project_file.ProjectFile()
    except project_file.ProjectFileError as err:
        _fail(str(err))
    given = {
        "region": region, "data_bucket": data_bucket, "vpc_id": vpc_id, "subnet_ids": subnet_ids, "ami_id": ami_id,
        "artifact_bucket": artifact_bucket, "artifact_key": artifact_key, "queue_prefix": queue_prefix,
        "stack_name": stack_name, "emulator": emulator,
    }
    answers = _answers(project.deploy, given, param)
    if guided:
        answers = _ask(answers)
    s = _complete(answers)
    saving = guided or project_file.project_path().is_file()
    if saving:
        # before anything changes: a deploy that fails must not lose the answers
        where = project_file.save(project_file.ProjectFile(deploy=answers, env=project.env))
        console.print(f"answers saved to {where}", highlight=False)
    outputs = _deploy(s, answers, confirm=guided if confirm_changeset is None else confirm_changeset)
    env = {**outputs_to_env(outputs, answers.region), "SPECFLEET_FLEET_STACK_NAME": answers.stack_name}
    if saving:
        where = project_file.save(project_file.ProjectFile(deploy=answers, env=env))
        console.print(f"the stack's settings saved to {where}: later commands read them")
    if env_file:
        # Shell-quoted: `set -a; . ./file` must keep JSON lists intact.
        env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
        console.print(f"settings written to {env_file}")
    render(Deployed(outputs=outputs, env=env), _deployed_view, output, as_json)


class Deployed(BaseModel):
    """``infra deploy``: the stack's outputs and the settings they give."""

    outputs: dict[str, str]
    env: dict[str, str]


def _deployed_view(d: Deployed) -> Iterator[RenderableType | str]:
    table = Table(title="the stack's settings", title_justify="left")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    for key, value in d.env.items():
        table.add_row(key, value)
    yield table
    yield "[green]stack ready[/]"


def _answers(saved: DeployAnswers, given: dict[str, Any], param: list[str]) -> DeployAnswers:
    """The saved answers with the options given over them, ``--param Key=Value`` added."""
    answers = saved.model_copy(update={k: v for k, v in given.items() if v is not None})
    extra = dict(saved.parameters)
    for item in param:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--param {item!r} must look like Key=Value")
        extra[key] = value
    answers.parameters = extra
    return answers


def _complete(answers: DeployAnswers) -> FleetSettings:
    """Check the answers as the questions do and fill in what the emulator
    picks itself; the settings to deploy with. Fails on the first missing or
    invalid value, naming it."""
    for field, check in ANSWER_CHECKS.items():  # options and saved files, as the questions check them
        value = getattr(answers, field)
        try:
            if value:
                check(value)
        except typer.BadParameter as err:
            _fail(f"{field.replace('_', ' ')}: {err.message}", "run `specfleet infra deploy --guided` to re-answer")
    if not answers.region:
        _fail("--region is required", "or run `specfleet infra deploy --guided` once to save it in specfleet.toml")
    s = _settings(answers.region)
    answers.stack_name = answers.stack_name or s.fleet_stack_name
    for name, label in (("data_bucket", "--data-bucket"), ("artifact_bucket", "--artifact-bucket")):
        if not getattr(answers, name):
            _fail(f"{label} is required", "or run `specfleet infra deploy --guided`")
    if answers.emulator and not (answers.vpc_id and answers.subnet_ids and answers.ami_id):
        answers.vpc_id, answers.subnet_ids, answers.ami_id = _emulator_network(
            s, answers.vpc_id or None, answers.subnet_ids or None, answers.ami_id or None)
    if not (answers.vpc_id and answers.subnet_ids and answers.ami_id):
        _fail("--vpc-id, --subnet-ids and --ami-id are required (the emulator picks its own)",
              "or run `specfleet infra deploy --guided`")
    return s


def _deploy(s: FleetSettings, answers: DeployAnswers, *, confirm: bool) -> dict[str, str]:
    """Create or update the stack (``confirm``: show the change set and ask
    first); its outputs. Each stack event is a line of its own, kept (RDS takes minutes)."""
    from botocore.exceptions import ClientError

    from ..fleet.deploy import DeployError, deploy, discard, execute, plan

    params = template_parameters(answers)

    def event(message: str) -> None:
        console.print(f"  [dim]{escape(message)}[/]", highlight=False, soft_wrap=True)

    try:
        if not confirm:
            return deploy(s, params, stack_name=answers.stack_name, progress=event)
        with console.status("preparing the change set"):
            planned = plan(s, params, stack_name=answers.stack_name, progress=event)
        _show_plan(planned)
        if not planned.no_changes and not typer.confirm("Deploy this change set?", default=False):
            discard(s, planned)
            console.print("nothing changed (the change set was deleted)")
            raise typer.Exit(1)
        return execute(s, planned, params, progress=event)
    except DeployError as err:
        _fail(str(err))
    except ClientError as err:
        _fail(f"{err.operation_name}: {err.response.get('Error', {}).get('Message') or err}")


def template_parameters(answers: DeployAnswers) -> dict[str, str]:
    """The template's parameters from the answers (``--param`` ones last, so they win)."""
    return {
        "DataBucketName": answers.data_bucket, "VpcId": answers.vpc_id, "SubnetIds": answers.subnet_ids,
        "AmiId": answers.ami_id, "ArtifactBucket": answers.artifact_bucket, "ArtifactKey": answers.artifact_key,
        "QueuePrefix": answers.queue_prefix, "Emulator": "true" if answers.emulator else "false", **answers.parameters,
    }


def _ask(answers: Any) -> Any:
    """``--guided``: one question per value, the saved answer as default;
    an answer that cannot work is said so and asked again (as SAM does)."""
    console.print("Deploying the specfleet stack. Enter accepts the [bold]default[/]; answers go to specfleet.toml.")
    a = answers.model_copy()

    def ask(label: str, field: str, default: str | None, *, dash: bool = False) -> str:
        check = ANSWER_CHECKS.get(field, lambda v: v)

        def proc(value: str) -> str:
            value = value.strip()
            return "-" if dash and value == "-" else check(value)

        value = typer.prompt(label, default=default, value_proc=proc)
        return "" if dash and value == "-" else value

    a.region = ask("AWS region", "region", a.region or "us-east-1")
    a.stack_name = ask("stack name", "stack_name", a.stack_name or "specfleet")
    a.emulator = typer.confirm("deploy to the local emulator (moto) rather than AWS?", default=a.emulator)
    a.data_bucket = ask("results bucket (globally unique)", "data_bucket", a.data_bucket or f"{a.stack_name}-data")
    a.artifact_bucket = ask("bucket for the Lambda zip", "artifact_bucket",
                            a.artifact_bucket or f"{a.stack_name}-artifacts")
    a.artifact_key = ask("key of the Lambda zip (`specfleet infra package`; '-' for none)", "artifact_key",
                         a.artifact_key or "-", dash=True)
    a.queue_prefix = ask("queue name prefix ('-' for none)", "queue_prefix", a.queue_prefix or "-", dash=True)
    hint = " ('-': the emulator's)" if a.emulator else ""
    for name, label in (("vpc_id", "VPC id"), ("subnet_ids", "subnet ids, comma-separated, two AZs"),
                        ("ami_id", "worker AMI id (`specfleet ami bake`)")):
        setattr(a, name, ask(f"{label}{hint}", name, getattr(a, name) or ("-" if a.emulator else None),
                             dash=a.emulator))
    return a


def _show_plan(planned: Any) -> None:
    """The change set, as SAM shows it: operation, logical id, type, replacement."""
    if planned.no_changes:
        console.print(f"stack {planned.stack_name}: no changes to deploy")
        return
    table = Table(title=f"change set {planned.change_set} ({planned.kind.lower()} stack {planned.stack_name})",
                  title_justify="left")
    for col in ("operation", "logical id", "resource type", "replacement"):
        table.add_column(col)
    words = {"Add": "+ Add", "Modify": "* Modify", "Remove": "- Delete"}
    for c in planned.changes:
        table.add_row(words.get(c.action, c.action), c.logical_id, c.resource_type, c.replacement or "")
    console.print(table)
    console.print(f"{len(planned.changes)} change(s)", highlight=False)


# --- what each answer may be ---------------------------------------------------------------
def _check(pattern: str, what: str) -> Any:
    import re

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise typer.BadParameter(f"{value!r} is not {what}")
        return value

    return check


def _check_bucket(value: str) -> str:
    """S3's bucket naming rules (general purpose buckets)."""
    import ipaddress
    import re

    why = ""
    if not 3 <= len(value) <= 63:
        why = "3 to 63 characters long"
    elif not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", value):
        why = "lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit"
    elif ".." in value or value.startswith("xn--") or value.endswith(("-s3alias", "--ol-s3")):
        why = "free of '..', the 'xn--' prefix and the '-s3alias' suffix"
    else:
        try:
            ipaddress.IPv4Address(value)
            why = "not an IP address"
        except ValueError:
            pass
    if why:
        raise typer.BadParameter(f"{value!r} is not a bucket name: it must be {why}")
    return value


def _check_queue_prefix(value: str) -> str:
    """Every queue the prefix makes must be a valid SQS name (80 characters
    of letters, digits, '-' and '_')."""
    import re

    from ..pipelines import specs
    from ..queues import DLQ_SUFFIX

    longest = max(len(n) for s in specs() for n in (s.job_queue, s.status_queue)) + len(DLQ_SUFFIX)
    if not re.fullmatch(r"[A-Za-z0-9_-]*", value):
        raise typer.BadParameter(f"{value!r} is not a queue name prefix: letters, digits, '-' and '_' only")
    if len(value) + longest > 80:
        raise typer.BadParameter(f"{value!r} is too long: queue names would pass SQS's 80 characters")
    return value


def _check_subnets(value: str) -> str:
    subnets = [x.strip() for x in value.split(",") if x.strip()]
    for subnet in subnets:
        _check(r"subnet-[0-9a-f]{8}([0-9a-f]{9})?", "a subnet id (subnet-0123456789abcdef0)")(subnet)
    if len(subnets) < 2:
        raise typer.BadParameter("give two subnets at least, in two availability zones (the database needs two)")
    return ",".join(subnets)


#: Each answer's check: returns the value, or raises ``typer.BadParameter`` saying why not.
ANSWER_CHECKS: dict[str, Any] = {
    "region": _check(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", "an AWS region (us-east-1, eu-west-2...)"),
    "stack_name": _check(r"[A-Za-z][A-Za-z0-9-]{0,127}",
                         "a stack name (a letter, then letters, digits and hyphens, 128 at most)"),
    "data_bucket": _check_bucket,
    "artifact_bucket": _check_bucket,
    "artifact_key": _check(r"[^/\s][^\s]*\.zip", "an S3 key of a .zip (`specfleet infra package` prints it)"),
    "queue_prefix": _check_queue_prefix,
    "vpc_id": _check(r"vpc-[0-9a-f]{8}([0-9a-f]{9})?", "a VPC id (vpc-0123456789abcdef0)"),
    "subnet_ids": _check_subnets,
    "ami_id": _check(r"ami-[0-9a-f]{8}([0-9a-f]{9})?", "an image id (ami-0123456789abcdef0)"),
}


def _emulator_network(s: Any, vpc_id: str | None, subnet_ids: str | None, ami_id: str | None) -> tuple[str, str, str]:
    """moto's default VPC, two of its subnets and the stand-in worker image."""
    from ..aws import client
    from ..fleet.instances import local_worker_image

    if not s.endpoint_url:
        _fail("--emulator deploys to a local endpoint only (start one with `specfleet local up`)")
    ec2 = client("ec2", s)
    if not vpc_id:
        vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    if not subnet_ids:
        found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        subnet_ids = ",".join(sorted(x["SubnetId"] for x in found)[:2])
    return str(vpc_id), str(subnet_ids), ami_id or local_worker_image(s, s.region)


@infra_app.command("destroy")
def infra_destroy(
    region: str | None = typer.Option(None, help="AWS region (default: specfleet.toml's)."),
    stack_name: str | None = typer.Option(None, help="Stack name (default: specfleet.toml's)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Delete the stack (the data bucket and a DB snapshot are kept).

    Region and stack name default to what `infra deploy --guided` saved in specfleet.toml.

    Example: specfleet infra destroy
    """
    from ..fleet.deploy import destroy
    from . import project as project_file

    try:
        project = project_file.load()
    except project_file.ProjectFileError as err:
        _fail(str(err))
    saved = project.deploy if project is not None else None
    region = region or (saved.region if saved else None)
    if not region:
        _fail("--region is required", "or run it where `infra deploy --guided` saved specfleet.toml")
    s = _settings(region)
    name = stack_name or (saved.stack_name if saved and saved.stack_name else s.fleet_stack_name)
    if not yes and not typer.confirm(f"delete stack {name} in {region}?"):
        raise typer.Exit(1)
    with console.status(f"deleting {name}") as status:
        final = destroy(s, stack_name=name, progress=lambda m: status.update(m))
    render(Destroyed(stack=name, status=final), lambda d: [f"{d.stack}: {d.status}"], output, as_json)


class Destroyed(BaseModel):
    stack: str
    status: str


# --- ami -------------------------------------------------------------------------------
@ami_app.command("bake")
def ami_bake(
    base_ami: str = typer.Option(..., help="Base image (Debian 12 or Ubuntu 22.04+)."),
    source: str | None = typer.Option(None, help="pip requirement for specfleet (default: upload this checkout's wheel)."),
    copy_to: list[str] = typer.Option([], help="Also copy the image to these regions."),
    instance_type: str | None = typer.Option(None),
    name: str | None = typer.Option(None),
    region: str | None = typer.Option(None),
    timeout: float = typer.Option(3600, help="Seconds to wait for provisioning."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Launch the base image with ami/provision.sh as user-data, wait for it to
    power off, create and tag the image; --copy-to copies it.

    Example: specfleet ami bake --base-ami ami-0123456789abcdef0 --copy-to us-west-2
    """
    from ..fleet.ami import bake, wheel_source

    s = _settings(region)
    with console.status("baking") as status:
        src = source or wheel_source(s)
        result = bake(
            s, base_ami=base_ami, source=src, name=name, instance_type=instance_type, copy_to=copy_to,
            timeout_s=timeout, progress=lambda m: status.update(m),
        )
    render(Baked.model_validate(result), _baked_view, output, as_json)


class Baked(BaseModel):
    image_id: str
    region: str
    name: str
    builder: Any
    copies: Any


def _baked_view(b: Baked) -> Iterator[str]:
    yield f"[green]AMI {b.image_id}[/] in {b.region}: set SPECFLEET_FLEET_AMI_ID={b.image_id}"


# --- fleet -----------------------------------------------------------------------------
@fleet_app.command("launch")
def fleet_launch(
    pipeline: str = typer.Option(..., help="Pipeline the workers consume."),
    count: int = typer.Option(1, min=1, help="Instances to start."),
    region: str | None = typer.Option(None, help="Region to launch in (default: the home region)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Start without showing the plan and asking."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Start COUNT worker instances with the pipeline's user-data, after showing what they will cost.

    The plan covers the jobs waiting on the pipeline's queue with COUNT
    instances: wall time, compute (spot and on-demand), S3, SQS, results
    read out of AWS and the stack's fixed costs.

    Example: specfleet fleet launch --pipeline hydrophone --count 4
    """
    from ..fleet.instances import FleetError, launch
    from ..fleet.plan import PlanError, plan
    from ..pipelines import job_queue

    s = _settings()
    if not yes:
        waiting = job_queue(s, pipeline).depth()
        backlog = waiting["visible"] + waiting["in_flight"] + waiting["delayed"]
        try:
            estimate = plan(s, pipeline, max(1, backlog), instances=count)
        except PlanError as err:
            _fail(str(err))
        show_plan(estimate, title=f"{count} x {estimate.instance_type} for the {backlog} {pipeline} jobs waiting")
        if not typer.confirm(f"start {count} {pipeline} instance(s)?", default=False):
            console.print("nothing started")
            raise typer.Exit(1)
    try:
        ids = launch(s, pipeline, count, region=region)
    except FleetError as err:
        _fail(str(err))
    render(Launched(pipeline=pipeline, instances=ids),
           lambda r: [f"launched {len(r.instances)} {r.pipeline} workers: {', '.join(r.instances)}"], output, as_json)


class Launched(BaseModel):
    pipeline: str
    instances: list[str]


@fleet_app.command("scale")
def fleet_scale(
    pipeline: str = typer.Option(...),
    count: int = typer.Option(..., min=0),
    region: str | None = typer.Option(None),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Launch or terminate workers until COUNT are running in the region.

    Example: specfleet fleet scale --pipeline download --count 4
    """
    from ..fleet.instances import FleetError, scale

    try:
        result = scale(_settings(), pipeline, count, region=region)
    except FleetError as err:
        _fail(str(err))
    render(Scaled.model_validate(result), lambda r: [f"{r.pipeline}: {r.before} -> {r.desired} in {r.region}"],
           output, as_json)


class Scaled(BaseModel):
    pipeline: str
    region: str
    before: int
    desired: int
    launched: list[str]
    terminated: list[str]


@fleet_app.command("ls")
def fleet_ls(
    pipeline: str | None = typer.Option(None),
    region: str | None = typer.Option(None),
    all_states: bool = typer.Option(False, "--all", help="Include stopped and terminated instances."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """This deployment's worker instances across the fleet regions.

    Example: specfleet fleet ls --all
    """
    from ..fleet.instances import LIVE_STATES, InstanceInfo, list_instances

    found = list_instances(
        _settings(), pipeline, regions=[region] if region else None, states=None if all_states else LIVE_STATES
    )
    Instances.model_rebuild(_types_namespace={"InstanceInfo": InstanceInfo})  # resolved here: boto3-heavy module
    render(Instances(found), _instances_view, output, as_json)


class Instances(RootModel[list["InstanceInfo"]]):
    """``fleet ls``: one row per worker instance."""


def _instances_view(found: Instances) -> Iterator[Table]:
    table = Table(title="specfleet workers")
    for col in ("instance", "region", "pipeline", "state", "type", "market", "launched"):
        table.add_column(col)
    for i in found.root:
        table.add_row(i.instance_id, i.region, i.pipeline, i.state, i.instance_type, i.lifecycle, i.launched)
    yield table


@fleet_app.command("stop")
def fleet_stop(
    pipeline: str | None = typer.Option(None),
    region: str | None = typer.Option(None),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Terminate workers (they drain: no new jobs, in-flight ones handed back).

    Example: specfleet fleet stop --pipeline download
    """
    from ..fleet.instances import stop

    ids = stop(_settings(), pipeline, region=region)
    render(Stopped(terminated=ids), lambda r: [f"terminating {len(r.terminated)} workers"], output, as_json)


class Stopped(BaseModel):
    terminated: list[str]


@fleet_app.command("failover")
def fleet_failover(
    pipeline: str = typer.Option(...),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Relaunch banned workers' capacity in the next fleet region.

    Example: specfleet fleet failover --pipeline search
    """
    from ..fleet.failover import relaunch_banned

    with console.status("looking for banned workers"):
        moves = relaunch_banned(_settings(), pipeline)
    render(Moves([m.as_dict() for m in moves]),
           lambda r: [f"{m['banned_instance']} ({m['from_region']}) -> {', '.join(m['new_instances'])} in "
                      f"{m['to_region']}" for m in r.root], output, as_json)


class Moves(RootModel[list[dict[str, Any]]]):
    """``fleet failover``: each banned worker and where its capacity went."""


@fleet_app.command("autoscale")
def fleet_autoscale(
    pipeline: list[str] = typer.Option([], help="Pipelines to show (repeat; default: every group of this deployment)."),
    region: str | None = typer.Option(None, help="Region of the stack (default: the home region)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Dry run: what each Auto Scaling group's policies would do now. Reads the
    deployed policies (DescribePolicies), the job queue's visible messages
    (GetQueueAttributes) and the group's in-service/desired counts
    (DescribeAutoScalingGroups); changes nothing. AWS applies the policies
    itself (target tracking on backlog per instance, a step from zero).

    Example: specfleet fleet autoscale --pipeline hydrophone
    """
    from ..fleet.autoscale import dry_run

    views = dry_run(_settings(region), pipeline or None)
    render(GroupViews([v.as_dict() for v in views]), _group_views, output, as_json)


class GroupViews(RootModel[list[dict[str, Any]]]):
    """``fleet autoscale``: each group's policies applied to its queue now (``GroupView.as_dict``)."""


def _group_views(views: GroupViews) -> Iterator[str]:
    if not views.root:
        yield "no Auto Scaling groups tagged for this deployment (deploy the stack: `specfleet infra deploy`)"
    for v in views.root:
        yield (f"{v['pipeline']}: {v['visible']} visible, {v['in_service']} in service, desired "
               f"{v['desired_before']} -> {v['desired']} ({v['change']}; {v['policy']}: {escape(str(v['reason']))}; "
               f"target {v['target_backlog_per_instance']:g}/instance, {v['rule_source']})")


@fleet_app.command("plan")
def fleet_plan(
    pipeline: str = typer.Option(...),
    jobs: int = typer.Option(..., min=1, help="How many jobs (hydrophone: files; music: tracks)."),
    instance_type: str | None = typer.Option(None),
    deadline: float | None = typer.Option(None, help="Hours to finish in."),
    read_out: float | None = typer.Option(
        None, "--read-out", min=0.0, max=1.0,
        help="Share of the results you will download out of AWS (0 when used in the region; default 1)."),
    output: OutputFormat = OUTPUT,
    as_json: bool = JSON,
) -> None:
    """Instances, wall time and cost (compute, S3, SQS, transfer out) from measured throughput and the price table.

    Example: specfleet fleet plan --pipeline hydrophone --jobs 8640 --deadline 24 --read-out 0
    """
    from ..fleet.plan import PlanError, plan

    try:
        result = plan(_settings(offline=True), pipeline, jobs, instance_type=instance_type, deadline_h=deadline,
                      read_out=read_out)
    except PlanError as err:
        _fail(str(err))
    render(result, lambda r: plan_view(r, title=f"plan: {jobs} {pipeline} jobs on {r.instance_type}"), output, as_json)


def plan_view(result: Plan, title: str) -> Iterator[RenderableType | str]:
    """The plan as a table: instances, hours, and every cost line; then where the throughput came from."""
    table = Table(title=title, title_justify="left")
    table.add_column("item")
    table.add_column("value", justify="right")
    for label, value in (
        ("instances", result.instances), ("jobs / instance-hour", result.jobs_per_instance_hour),
        ("wall time (h)", result.wall_hours), ("instance-hours", result.instance_hours),
        ("compute on-demand ($)", result.compute_on_demand_usd), ("compute spot ($)", result.compute_spot_usd),
        ("S3 PUTs ($)", result.s3_put_usd), ("S3 GETs ($)", result.s3_get_usd), ("S3 storage (GB)", result.s3_storage_gb),
        ("S3 storage per month ($)", result.s3_storage_month_usd), ("SQS ($)", result.sqs_usd),
        (f"results out of AWS, {result.egress_gb} GB ($)", result.egress_usd),
        (f"stack's fixed costs for the run (${result.fixed_month_usd}/month) ($)", result.fixed_usd),
        ("total, spot ($)", result.total_spot_usd), ("total, on-demand ($)", result.total_on_demand_usd),
    ):
        table.add_row(escape(label), str(value))
    yield table
    yield f"[dim]throughput: {escape(result.throughput_source)}[/]"
    for note in result.notes:
        yield f"[yellow]note[/]: {escape(note)}"


def show_plan(result: Plan, title: str) -> None:
    """The plan on stderr, before a question (``fleet launch``, ``reprocess``)."""
    for part in plan_view(result, title):
        console.print(part, highlight=False, soft_wrap=isinstance(part, str))


@fleet_app.command("emulate")
def fleet_emulate(
    log_dir: Path | None = typer.Option(None, help="Worker logs (default <local_dir>/fleet)."),
    autoscale: bool = typer.Option(True, help="Apply the stack's scaling policies to its groups, as AWS would."),
    scale_every: float = typer.Option(5.0, help="Seconds between scaling evaluations (CloudWatch: 60)."),
) -> None:
    """Run the local fleet emulator: instances launched on the local stack's
    moto (directly or by a group) become worker processes (Ctrl-C stops them
    all); their output goes to the pipelines' log groups.

    Example: specfleet fleet emulate --scale-every 1
    """
    from ..fleet.emulator import FleetEmulator

    s = _settings()
    if not s.endpoint_url:
        _fail("the emulator only runs against a local stack (start one with `specfleet local up`)")
    from ..local.stack import stop_on_signals, wait_until

    # SIGTERM as well as Ctrl-C: either way the workers get stopped, not orphaned.
    stop = stop_on_signals()
    emu = FleetEmulator(s, log_dir=log_dir, autoscale=autoscale, scale_every_s=scale_every).start()
    console.print(f"fleet emulator watching {', '.join(emu.regions)}; worker logs in {emu.log_dir}")
    try:
        wait_until(stop)
        console.print("stopping workers")
    finally:
        emu.stop()


def register(app: typer.Typer, produce_app: typer.Typer) -> None:
    app.add_typer(infra_app, name="infra")
    app.add_typer(ami_app, name="ami")
    app.add_typer(fleet_app, name="fleet")
