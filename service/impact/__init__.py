"""Rule-set impact: both rule sets on the same patients, and what changes for whom.

Clinical governance approves a rule change by what it does to patients. This package replays
patients through the service's own evaluation path (``service.pipeline``) once per rule set and
compares the cards. No Flask here: the CLI and the admin workbench page both call it.
"""

from service.impact.compare import Impact
from service.impact.replay import Workload, replay

__all__ = ["Impact", "Workload", "replay"]
