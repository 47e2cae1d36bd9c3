"""CloudFormation: lint, package the Lambda artifact, deploy and destroy.

* ``validate``: cfn-lint's API on ``infra/template.yaml``;
* ``package``: a deterministic zip of ``lambdas/`` + ``specfleet/`` (+ the
  writer's requirements, installed for the Lambda platform), uploaded under a
  content hash so a changed package always reaches the function;
* ``deploy``: create or update the stack, wait, run the migration function
  once, and turn the outputs into ``SPECFLEET_*`` settings;
* ``destroy``: delete the stack (the data bucket and a final DB snapshot are
  retained by the template's deletion policies).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..aws import client
from .settings import FleetSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
ELASTICMQ_CONF = REPO_ROOT / "infra" / "local" / "elasticmq.conf"
LAMBDA_REQUIREMENTS = REPO_ROOT / "lambdas" / "status_writer" / "requirements.txt"
LAMBDA_PYTHON = "3.12"
#: Stack output -> setting (env var) it feeds.
OUTPUT_SETTINGS = {
    "StackName": "SPECFLEET_FLEET_STACK_NAME",
    "QueuePrefix": "SPECFLEET_QUEUE_PREFIX",
    "DataBucketName": "SPECFLEET_BUCKET",
    "DatabaseSecretArn": "SPECFLEET_DB_SECRET_ID",
    "WorkerInstanceProfileArn": "SPECFLEET_FLEET_INSTANCE_PROFILE",
    "WorkerSecurityGroupId": "SPECFLEET_FLEET_SECURITY_GROUP_IDS",
    "WorkerSubnetId": "SPECFLEET_FLEET_SUBNET_ID",
}
_FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)

Progress = Callable[[str], None]


class DeployError(RuntimeError):
    pass


def _noop(_: str) -> None:
    pass


# --- validate ------------------------------------------------------------------
def validate(template: Path = TEMPLATE) -> list[str]:
    """cfn-lint findings (errors and warnings) as ``path:line: RULE message``."""
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(Path(template), config=ManualArgs(regions=["us-east-1"]))
    return [f"{template}:{m.linenumber}: {m.rule.id} {m.message}" for m in matches]


# --- package -------------------------------------------------------------------
def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))


#: What the Lambdas run: the status writer and the migration function.
LAMBDA_HANDLERS = ("lambdas.status_writer.handler", "lambdas.migrate.handler")


def writer_files() -> list[Path]:
    """The ``specfleet`` files the Lambdas need: the modules their handlers
    import (found by importing them in a fresh interpreter, so the list
    follows the code) and the SQL migrations they apply. No pipeline's
    worker, no CLI, no fleet tools: the writer's core only."""
    probe = (
        "import importlib, json, sys\n"
        f"for name in {list(LAMBDA_HANDLERS)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({getattr(m, '__file__', None) or '' for m in list(sys.modules.values())})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    if done.returncode != 0:
        raise DeployError(f"importing the Lambda handlers failed:\n{done.stderr[-2000:]}")
    package = (REPO_ROOT / "specfleet").resolve()
    files = {Path(f).resolve() for f in json.loads(done.stdout) if f}
    files = {f for f in files if f.is_relative_to(package)}
    sql = set(package.rglob("*.sql"))  # the migrations (core and each pipeline's), read as package data
    files |= sql | {d / "__init__.py" for d in {f.parent for f in sql} if (d / "__init__.py").exists()}
    return sorted(files)


def build_package(out_dir: Path, *, with_dependencies: bool = True) -> Path:
    """Zip the Lambda code (and, unless told otherwise, its requirements)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "build"
        build.mkdir()
        _copy_tree(REPO_ROOT / "lambdas", build / "lambdas")
        for path in writer_files():
            target = build / path.relative_to(REPO_ROOT.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        if with_dependencies:
            cmd = [
                sys.executable, "-m", "pip", "install", "--quiet", "--target", str(build),
                "--platform", "manylinux2014_x86_64", "--implementation", "cp",
                "--python-version", LAMBDA_PYTHON, "--only-binary=:all:", "-r", str(LAMBDA_REQUIREMENTS),
            ]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                raise DeployError(f"installing the writer's requirements failed:\n{result.stderr[-2000:]}")
        staging = Path(tmp) / "package.zip"
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in build.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(str(path.relative_to(build)), date_time=_FIXED_ZIP_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
        digest = hashlib.sha256(staging.read_bytes()).hexdigest()[:16]
        final = out_dir / f"status-writer-{digest}.zip"
        shutil.move(str(staging), final)
    return final


def upload_package(settings: FleetSettings, zip_path: Path, bucket: str | None = None) -> tuple[str, str]:
    """Upload to the artifact bucket (created if missing); return (bucket, key)."""
    bucket = bucket or settings.fleet_artifact_bucket
    if not bucket:
        raise DeployError("no artifact bucket: pass --artifact-bucket or set SPECFLEET_FLEET_ARTIFACT_BUCKET")
    s3 = client("s3", settings)
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
        s3.create_bucket(**kwargs)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
            },
        )
    key = f"lambda/{zip_path.name}"
    s3.upload_file(str(zip_path), bucket, key)
    return bucket, key


# --- deploy / destroy ------------------------------------------------------------
def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except cfn.exceptions.ClientError as err:
        if "does not exist" in str(err):
            return None
        raise


def wait_for_stack(settings: FleetSettings, name: str, progress: Progress = _noop, timeout_s: float = 3600) -> dict[str, Any]:
    cfn = client("cloudformation", settings)
    delay = 0.5 if settings.endpoint_url else 10.0
    deadline = time.monotonic() + timeout_s
    seen_events: set[str] = set()
    while True:
        stack = _stack(cfn, name)
        if stack is None:
            return {"StackStatus": "DELETE_COMPLETE"}
        try:
            events = cfn.describe_stack_events(StackName=name)["StackEvents"]
        except cfn.exceptions.ClientError:
            events = []
        for ev in reversed(events):
            if ev["EventId"] not in seen_events:
                seen_events.add(ev["EventId"])
                progress(f"{ev['LogicalResourceId']}: {ev['ResourceStatus']} {ev.get('ResourceStatusReason', '')}".strip())
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() > deadline:
            raise DeployError(f"stack {name} still {stack['StackStatus']} after {timeout_s:.0f}s")
        time.sleep(delay)  # polling CloudFormation, as its own waiters do


def deploy(
    settings: FleetSettings,
    parameters: dict[str, str],
    *,
    stack_name: str | None = None,
    template: Path = TEMPLATE,
    progress: Progress = _noop,
) -> dict[str, str]:
    """Create or update the stack; return its outputs."""
    name = stack_name or settings.fleet_stack_name
    cfn = client("cloudformation", settings)
    body = Path(template).read_text()
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    existing = _stack(cfn, name)
    if existing is None or existing["StackStatus"] == "ROLLBACK_COMPLETE":
        if existing is not None:
            progress(f"deleting {name} left in ROLLBACK_COMPLETE")
            cfn.delete_stack(StackName=name)
            wait_for_stack(settings, name, progress)
        progress(f"creating stack {name}")
        cfn.create_stack(
            StackName=name, TemplateBody=body, Parameters=params, Capabilities=["CAPABILITY_IAM"],
            OnFailure="ROLLBACK", Tags=[{"Key": "specfleet:stack", "Value": name}],
        )
        goal = "CREATE_COMPLETE"
    else:
        progress(f"updating stack {name}")
        try:
            cfn.update_stack(
                StackName=name, TemplateBody=body, Parameters=params, Capabilities=["CAPABILITY_IAM"]
            )
        except cfn.exceptions.ClientError as err:
            if "No updates are to be performed" not in str(err):
                raise
            progress("no changes")
        goal = "UPDATE_COMPLETE"
    stack = wait_for_stack(settings, name, progress)
    if stack["StackStatus"] not in (goal, "CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise DeployError(f"stack {name} ended {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
    return _finish(settings, name, stack, parameters, template, progress)


# --- change sets (``infra deploy --guided``: look, confirm, then change) ----------------
@dataclass(frozen=True)
class Change:
    """One resource a change set would add, modify or remove."""

    action: str
    logical_id: str
    resource_type: str
    #: "True" / "False" / "Conditional" for a modification (CloudFormation's words).
    replacement: str = ""


@dataclass(frozen=True)
class ChangePlan:
    stack_name: str
    change_set: str
    #: "CREATE" (a new stack) or "UPDATE".
    kind: str
    changes: tuple[Change, ...]
    #: CloudFormation found nothing to change (the change set is already gone).
    no_changes: bool = False


def _fail_reason(cfn: Any, name: str) -> str:
    """The first resource failure among the stack's events, in CloudFormation's words."""
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except cfn.exceptions.ClientError:
        return ""
    failed = [e for e in reversed(events) if e["ResourceStatus"].endswith("_FAILED") and e.get("ResourceStatusReason")]
    return f"{failed[0]['LogicalResourceId']}: {failed[0]['ResourceStatusReason']}" if failed else ""


def plan(
    settings: FleetSettings,
    parameters: dict[str, str],
    *,
    stack_name: str | None = None,
    template: Path = TEMPLATE,
    progress: Progress = _noop,
    timeout_s: float = 300,
) -> ChangePlan:
    """A change set for the stack (created if absent), described: nothing is
    changed until ``execute``. A stack a failed create left behind
    (ROLLBACK_COMPLETE, or REVIEW_IN_PROGRESS with no change set) is deleted first."""
    name = stack_name or settings.fleet_stack_name
    cfn = client("cloudformation", settings)
    existing = _stack(cfn, name)
    if existing is not None and existing["StackStatus"] in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):
        progress(f"deleting {name}, left {existing['StackStatus']} by an earlier create")
        cfn.delete_stack(StackName=name)
        wait_for_stack(settings, name, progress)
        existing = None
    kind = "CREATE" if existing is None else "UPDATE"
    change_set = f"specfleet-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    cfn.create_change_set(
        StackName=name, ChangeSetName=change_set, ChangeSetType=kind, TemplateBody=Path(template).read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"], Tags=[{"Key": "specfleet:stack", "Value": name}],
    )
    deadline = time.monotonic() + timeout_s
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set, StackName=name)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            break
        if time.monotonic() > deadline:
            raise DeployError(f"change set {change_set} still {described['Status']} after {timeout_s:.0f}s")
        time.sleep(0.5 if settings.endpoint_url else 3.0)  # polling CloudFormation, as its own waiters do
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            cfn.delete_change_set(ChangeSetName=change_set, StackName=name)
            return ChangePlan(name, change_set, kind, (), no_changes=True)
        raise DeployError(f"CloudFormation refused the change set: {reason}")
    changes = tuple(
        Change(rc.get("Action", ""), rc.get("LogicalResourceId", ""), rc.get("ResourceType", ""),
               str(rc.get("Replacement", "")))
        for rc in (c.get("ResourceChange", {}) for c in described.get("Changes", []))
    )
    return ChangePlan(name, change_set, kind, changes)


def discard(settings: FleetSettings, planned: ChangePlan) -> None:
    """Drop a change set not executed (and the empty stack a CREATE made for it)."""
    cfn = client("cloudformation", settings)
    if not planned.no_changes:
        cfn.delete_change_set(ChangeSetName=planned.change_set, StackName=planned.stack_name)
    if planned.kind == "CREATE":
        cfn.delete_stack(StackName=planned.stack_name)
        wait_for_stack(settings, planned.stack_name)


def execute(
    settings: FleetSettings,
    planned: ChangePlan,
    parameters: dict[str, str],
    *,
    template: Path = TEMPLATE,
    progress: Progress = _noop,
) -> dict[str, str]:
    """Carry out ``planned``, streaming the stack's events to ``progress``;
    return the outputs. A create that fails is deleted (nothing half-made
    is left behind) and reported with CloudFormation's reason."""
    cfn = client("cloudformation", settings)
    name = planned.stack_name
    failure = ""
    if planned.no_changes:
        progress("no changes")
        stack = _stack(cfn, name) or {}
    elif parameters.get("Emulator") == "true":
        # moto executes a change set without building the stack's outputs
        # (moto/cloudformation/models.py: ChangeSet.apply updates the resources
        # only), so the emulator makes the same template and parameters the
        # plain way once they were shown and confirmed.
        discard(settings, planned)
        try:
            return deploy(settings, parameters, stack_name=name, template=template, progress=progress)
        except (DeployError, cfn.exceptions.ClientError) as err:
            failure = str(err)
    else:
        try:
            cfn.execute_change_set(ChangeSetName=planned.change_set, StackName=name)
        except cfn.exceptions.ClientError as err:
            failure = str(err)
        stack = {} if failure else wait_for_stack(settings, name, progress)
        status = stack.get("StackStatus", "")
        if not failure and status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            failure = _fail_reason(cfn, name) or f"{status} {stack.get('StackStatusReason', '')}".strip()
    if failure:
        if planned.kind == "CREATE":
            progress(f"deleting {name}: its create failed")
            try:  # (moto may answer a describe of the failed stack with the create's error: just delete it)
                cfn.delete_stack(StackName=name)
                wait_for_stack(settings, name, progress)
            except cfn.exceptions.ClientError as err:
                raise DeployError(f"creating stack {name} failed: {failure}; deleting it failed too ({err}): "
                                  f"delete it with `specfleet infra destroy --stack-name {name}`") from None
            raise DeployError(f"creating stack {name} failed: {failure}; the stack was deleted, nothing is left "
                              "behind")
        raise DeployError(f"updating stack {name} failed: {failure}")
    return _finish(settings, name, stack, parameters, template, progress)


def _finish(settings: FleetSettings, name: str, stack: dict[str, Any], parameters: dict[str, str], template: Path,
            progress: Progress) -> dict[str, str]:
    """What follows a stack change: the emulator's gaps filled, migrations applied; the outputs."""
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if parameters.get("Emulator") == "true":
        from .moto_gaps import fill_in

        created = fill_in(settings, name, Path(template), parameters)
        progress(f"emulator: created {len(created)} scaling policies and alarms moto's CloudFormation skips")
    if "MigrateFunctionName" in outputs:
        progress("applying database migrations")
        run_migrations(settings, outputs["MigrateFunctionName"])
    return outputs


def run_migrations(settings: FleetSettings, function_name: str) -> list[str]:
    resp = client("lambda", settings).invoke(FunctionName=function_name, Payload=b"{}")
    payload = json.loads(resp["Payload"].read() or b"{}")
    if resp.get("FunctionError"):
        raise DeployError(f"migrations failed: {payload}")
    return list(payload.get("applied", []))


def destroy(settings: FleetSettings, *, stack_name: str | None = None, progress: Progress = _noop) -> str:
    name = stack_name or settings.fleet_stack_name
    cfn = client("cloudformation", settings)
    existing = _stack(cfn, name)
    if existing is None:
        return "absent"
    if any(p["ParameterKey"] == "Emulator" and p.get("ParameterValue") == "true"
           for p in existing.get("Parameters", [])):
        from .moto_gaps import remove

        remove(settings, name)
    cfn.delete_stack(StackName=name)
    return str(wait_for_stack(settings, name, progress)["StackStatus"])


def outputs_to_env(outputs: dict[str, str], region: str) -> dict[str, str]:
    """FleetSettings for working against the deployed stack."""
    env = {"SPECFLEET_REGION": region}
    for output, var in OUTPUT_SETTINGS.items():
        if output in outputs:
            value = outputs[output]
            env[var] = json.dumps([value]) if var == "SPECFLEET_FLEET_SECURITY_GROUP_IDS" else value
    return env
