"""The directory where gunicorn's workers share their Prometheus samples.

Each worker is its own process; prometheus_client adds their samples up only when
``PROMETHEUS_MULTIPROC_DIR`` names a directory before it is first imported. ``spinehip serve``
therefore sets it up itself, in every run mode: the configured directory (emptied, since files
left by an earlier run would be counted again) or a private temporary one removed at exit.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class MetricsDir:
    path: Path
    owned: bool  # created here, so removed at exit
    pid: int = field(default_factory=os.getpid)

    def remove(self) -> None:
        """Remove a directory created here; only in the process that created it (a gunicorn
        worker leaves through the same code on its way out)."""
        if self.owned and os.getpid() == self.pid:
            shutil.rmtree(self.path, ignore_errors=True)


def prepare(env: MutableMapping[str, str] = os.environ) -> MetricsDir:
    """Create or empty the directory and export it in ``env``; call before any sample is recorded."""
    configured = env.get(ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        _use_directory_values()
        return MetricsDir(path, owned=False)
    path = Path(tempfile.mkdtemp(prefix="spinehip-metrics-"))
    env[ENV] = str(path)
    _use_directory_values()
    return MetricsDir(path, owned=True)


def _use_directory_values() -> None:
    """prometheus_client picks where samples live when first imported; a command module may have
    imported it already. Every metric of ours has labels, so its samples are created on first
    use, after this: picking again makes them all go to the directory."""
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        values.ValueClass = values.get_value_class()
