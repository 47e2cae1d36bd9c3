"""``specfleet.toml``: what ``infra deploy --guided`` asked once, read by
every later command (like SAM's ``samconfig.toml``).

Two tables:

- ``[deploy]``: the answers (region, stack name, buckets, network, AMI,
  extra template parameters); a later ``infra deploy`` with no options
  reuses them, and any option given on the command line wins.
- ``[env]``: the settings the deployed stack yields (``SPECFLEET_*``: its
  queue prefix, bucket, database secret, stack name...). Every command
  reads them as defaults; a variable set in the environment wins.

The file holds names and ids only, never a secret (the database password
stays in Secrets Manager). It is found in the working directory, or where
``SPECFLEET_PROJECT_FILE`` points.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PROJECT_FILE = "specfleet.toml"
HEADER = (
    "# specfleet project settings, written by `specfleet infra deploy --guided`.\n"
    "# [deploy]: its answers, reused by `specfleet infra deploy`; [env]: the stack's\n"
    "# settings, read by every command (variables set in the environment win).\n"
    "# Names and ids only: no secret belongs here.\n\n"
)


class DeployAnswers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = ""
    stack_name: str = ""
    data_bucket: str = ""
    artifact_bucket: str = ""
    artifact_key: str = ""
    vpc_id: str = ""
    subnet_ids: str = ""
    ami_id: str = ""
    queue_prefix: str = ""
    emulator: bool = False
    parameters: dict[str, str] = Field(default_factory=dict)


class ProjectFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deploy: DeployAnswers = Field(default_factory=DeployAnswers)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _only_settings(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [k for k in env if not k.startswith(("SPECFLEET_", "AWS_REGION"))]
        if bad:
            raise ValueError(f"[env] holds specfleet settings only (SPECFLEET_*, AWS_REGION), not {', '.join(bad)}")
        secret = [k for k in env if k == "SPECFLEET_DB_DSN" or "PASSWORD" in k or "SECRET_ACCESS" in k]
        if secret:
            raise ValueError(f"[env] must not hold secrets ({', '.join(secret)}): use SPECFLEET_DB_SECRET_ID")
        return env


class ProjectFileError(ValueError):
    pass


def project_path() -> Path:
    return Path(os.environ.get("SPECFLEET_PROJECT_FILE") or PROJECT_FILE)


def load(path: Path | None = None) -> ProjectFile | None:
    """The project file, or None when there is none."""
    path = path or project_path()
    if not path.is_file():
        return None
    try:
        return ProjectFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except tomllib.TOMLDecodeError as err:
        raise ProjectFileError(f"{path} is not valid TOML: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProjectFileError(f"{path}: {where}: {first['msg']}") from None


def save(project: ProjectFile, path: Path | None = None) -> Path:
    import tomli_w

    path = path or project_path()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(HEADER + tomli_w.dumps(project.model_dump(mode="json")), encoding="utf-8")
    tmp.replace(path)
    return path


def apply_env(project: ProjectFile) -> list[str]:
    """Export ``[env]`` as defaults (the environment wins); the names set."""
    applied = []
    for key, value in project.env.items():
        if key not in os.environ:
            os.environ[key] = value
            applied.append(key)
    return applied
