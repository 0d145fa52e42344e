"""The integration tests' own helpers for the local FHIR server and for EHR-shaped calls.

They live under ``tests/integration`` (not a package: pytest puts that directory on the path), so
they are loaded here by file, and the benchmark starts, loads and calls the FHIR server exactly
as the integration tests do.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from types import ModuleType

from service.config import PROJECT_ROOT

HELPERS = PROJECT_ROOT / "tests" / "integration"


@cache
def helper(name: str) -> ModuleType:
    """``tests/integration/<name>.py`` as a module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HELPERS / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no helper module {HELPERS / name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
