"""``benchmarks/`` is a directory of the repository, not an installed package: import it from there."""

from __future__ import annotations

import sys

from service.config import PROJECT_ROOT

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))
