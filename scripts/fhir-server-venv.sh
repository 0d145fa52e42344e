#!/usr/bin/env bash
# Install the local FHIR R4 server used by the integration tests into a venv of its own.
#
# The server (sekmet-fhir) pins its own fhir.resources and FastAPI stack, so it never shares the
# project's venv. Idempotent: a venv that already has the pinned version is left alone.
#
# Usage: scripts/fhir-server-venv.sh [VENV_DIR]   (default: .fhir-venv beside this repository)
set -euo pipefail

FHIR_SERVER_PACKAGE="sekmet-fhir==0.1.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${FHIR_VENV:-$ROOT/.fhir-venv}}"
PYTHON="${PYTHON:-python3}"

installed_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("sekmet-fhir"))' 2>/dev/null || true
}

if [[ -x "$VENV/bin/sekmet" && "$(installed_version)" == "${FHIR_SERVER_PACKAGE##*==}" ]]; then
  echo "FHIR server venv ready: $VENV"
  exit 0
fi

echo "Installing $FHIR_SERVER_PACKAGE into $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$FHIR_SERVER_PACKAGE"
"$VENV/bin/sekmet" --help >/dev/null
echo "FHIR server venv ready: $VENV"
