"""Settings of the fleet area (``fleet``, ``ami``, ``infra``, ``logs`` and
``db tunnel`` commands): the core settings plus the fleet's own, environment
variables ``SPECFLEET_FLEET_*``. Workers never read these; only the
commands that manage instances and the stack do, so they live here and not
in the core ``Settings``. The fields keep their ``fleet_`` prefix so the
environment variable names are unchanged."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..settings import Settings


class FleetSettings(Settings):
    #: Regions the fleet may use, in failover order (a banned instance's
    #: capacity moves to the next one). JSON list in the environment.
    fleet_regions: list[str] = Field(default_factory=lambda: ["us-east-1", "us-west-2", "eu-west-1"])
    #: Worker AMI (in ``region``); other regions get a copy tagged with this id.
    fleet_ami_id: str = ""
    fleet_instance_type: str = "c6i.large"
    #: AWS's CloudWatch and SSM agents for the image, as ``URL#sha256=HEX``
    #: .deb files (Debian ships neither); ``ami bake`` checks each hash.
    fleet_agent_debs: list[str] = Field(default_factory=list)
    #: Buy spot capacity for ``fleet launch`` (the ASGs mix spot and on-demand).
    fleet_spot: bool = True
    fleet_instance_profile: str = ""
    fleet_security_group_ids: list[str] = Field(default_factory=list)
    fleet_subnet_id: str = ""
    fleet_stack_name: str = "specfleet"
    #: Bucket for deploy artifacts (the status-writer Lambda zip).
    fleet_artifact_bucket: str = ""
    #: JSON price table for ``fleet plan`` (empty: the packaged one).
    fleet_price_table: str = ""
    #: JSON throughput figures for ``fleet plan`` / autoscaling (empty: packaged).
    fleet_throughput_file: str = ""
    #: Autoscaling target: the backlog one instance clears in this many
    #: seconds (its jobs per second x this) is what target tracking keeps per
    #: instance. Rendered into the template (``specfleet infra render``).
    fleet_backlog_drain_s: float = Field(default=300.0, gt=0)
    #: Share of the results read out of AWS (to a laptop, another cloud), once:
    #: ``fleet plan``'s transfer cost. 0 when they are used in the region.
    fleet_results_read_out: float = Field(default=1.0, ge=0.0, le=1.0)
    #: Instances per pipeline at most (the template's MaxInstancesPerPipeline
    #: default; ``fleet plan``'s cap).
    fleet_max_size: int = Field(default=30, ge=1)
    #: Reach the private database from this machine through an SSM tunnel
    #: (`specfleet db tunnel`): status, report and the producers open one on
    #: first use. The local end's port (0: any free port) and AWS's plugin.
    fleet_db_tunnel: bool = False
    fleet_db_tunnel_port: int = Field(default=0, ge=0, le=65535)
    fleet_session_manager_plugin: str = "session-manager-plugin"

    @classmethod
    def over(cls, core: Settings, **update: Any) -> FleetSettings:
        """``core``'s values (as resolved, e.g. the local stack's) plus the
        fleet's own from the environment, then ``update``."""
        if isinstance(core, cls) and not update:
            return core
        values = {name: getattr(core, name) for name in Settings.model_fields}
        if isinstance(core, cls):
            values |= {name: getattr(core, name) for name in cls.model_fields}
        return cls(**(values | update))
