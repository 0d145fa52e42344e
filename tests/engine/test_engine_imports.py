"""The engine stays pure: read from the source files' imports, no module under service/engine
reaches the web framework, an HTTP client, or the protocol and web layers above it, directly or
through another module of the service."""

from __future__ import annotations

import ast
from pathlib import Path

from service.config import PACKAGE_DIR

FORBIDDEN = ("flask", "werkzeug", "requests", "service.cdshooks", "service.web")
ENGINE = "service.engine"


def _sources(package_dir: Path) -> dict[str, tuple[str, bool]]:
    """Dotted module name -> (source, is a package) for every .py file of the package."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (package_dir.name, *path.relative_to(package_dir).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        out[name] = (path.read_text(encoding="utf-8"), is_package)
    return out


def _imported(module: str, source: str, is_package: bool) -> set[str]:
    """Every name an import statement anywhere in the file brings in, relative ones resolved;
    ``from a import b`` gives both ``a`` and ``a.b`` (b may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join([*package, base]) if base else ".".join(package)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _is_forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def forbidden_paths(sources: dict[str, tuple[str, bool]]) -> set[tuple[str, ...]]:
    """Import chains from an engine module to a forbidden one, following the service's own
    modules (and the packages they sit in, whose ``__init__`` runs on import)."""
    found: set[tuple[str, ...]] = set()
    for start in (m for m in sources if m == ENGINE or m.startswith(ENGINE + ".")):
        seen, stack = {start}, [(start,)]
        while stack:
            chain = stack.pop()
            source, is_package = sources[chain[-1]]
            for name in sorted(_imported(chain[-1], source, is_package)):
                if _is_forbidden(name):
                    found.add((*chain, name))
                    continue
                parts = name.split(".")
                for module in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
                    if module in sources and module not in seen:
                        seen.add(module)
                        stack.append((*chain, module))
    return found


def test_engine_reaches_no_web_framework_http_client_or_protocol_layer():
    sources = _sources(PACKAGE_DIR)
    assert "service.engine.hooks" in sources and "service.engine.model" in sources
    paths = forbidden_paths(sources)
    assert not paths, "the engine imports upward:\n" + "\n".join(" -> ".join(p) for p in
                                                                 sorted(paths))


def test_the_check_sees_direct_relative_nested_and_indirect_imports():
    """The same check on a made-up tree: each kind of forbidden import is found, with the chain
    that leads to it, and an engine that imports only itself and the standard library is clean."""
    sources = {
        "service": ("", True),
        "service.helpers": ("import requests.adapters\n", False),
        "service.quiet": ("import json\n", False),
        "service.engine": ("from service.engine import clean\n", True),
        "service.engine.clean": ("import json\nfrom . import sibling\nfrom service import quiet\n",
                                 False),
        "service.engine.sibling": ("from dataclasses import dataclass\n", False),
        "service.engine.direct": ("import flask\n", False),
        "service.engine.relative": ("from ..cdshooks.hooks import HOOKS\n", False),
        "service.engine.nested": ("def view():\n    from service import web\n", False),
        "service.engine.indirect": ("from service import helpers\n", False),
    }
    assert forbidden_paths(sources) == {
        ("service.engine.direct", "flask"),
        ("service.engine.relative", "service.cdshooks.hooks"),
        ("service.engine.relative", "service.cdshooks.hooks.HOOKS"),
        ("service.engine.nested", "service.web"),
        ("service.engine.indirect", "service.helpers", "requests.adapters"),
    }
    clean = {k: v for k, v in sources.items()
             if k in ("service", "service.quiet", "service.engine", "service.engine.clean",
                      "service.engine.sibling")}
    assert forbidden_paths(clean) == set()
