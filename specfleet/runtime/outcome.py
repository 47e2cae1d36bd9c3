from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutcomeKind = Literal["done", "rejected", "skipped", "retry", "dead", "banned", "released", "paused", "elsewhere",
                      "misconfigured"]


@dataclass(frozen=True)
class Outcome:
    """What became of one job message."""

    kind: OutcomeKind
    reason: str = ""
    seconds: float = 0.0
    #: The job's own name for logs (its key, or the message id when unreadable).
    key: str = ""
    #: A ``paused`` outcome: how long the worker takes no job.
    wait_s: float = 0.0
    #: What the job wrote, in a few words ("60 clips, 4.2 MB"), when its handler said.
    wrote: str = ""
