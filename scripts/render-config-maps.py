"""Write deploy/config-maps.yaml: the hooks and rules ConfigMaps, from hooks/ and rules/.

kustomize reads only files it is told by name and none outside deploy/, so the manifest that
carries the configuration files is generated: a new rule file needs `make deploy-config`, never
an edit to the manifests. A ConfigMap key cannot hold "/", so each file travels under its flat
key (``rules/r01.yaml`` -> ``rules__r01.yaml``), which the service's loader reads back.

Usage: scripts/render-config-maps.py [--check]   (--check: exit 1 when the file is out of date)
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.yamlsource import flat_key, source_files  # noqa: E402

TARGET = ROOT / "deploy" / "config-maps.yaml"
CONFIG_MAPS = (("spinehip-hooks", "hooks"), ("spinehip-rules", "rules"))
HEADER = "# Generated from hooks/ and rules/ by `make deploy-config`: do not edit by hand.\n"


def render() -> str:
    """Both ConfigMaps as one YAML stream, keys sorted, file text kept verbatim."""
    yaml = YAML()
    yaml.width = 4096
    out = io.StringIO()
    out.write(HEADER)
    docs = []
    for name, directory in CONFIG_MAPS:
        data = {flat_key(f.name): LiteralScalarString(f.path.read_text(encoding="utf-8"))
                for f in source_files(ROOT / directory)}
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                     "data": data})
    yaml.dump_all(docs, out)
    return out.getvalue()


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run `make deploy-config`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
