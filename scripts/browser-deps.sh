#!/usr/bin/env bash
# Headless Chromium for the browser tests, from Debian's packages, installed where missing.
# Needs root and apt-get; otherwise says why and leaves the browser tests to skip (locally) or
# fail (CI=true).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "browser-deps: chromium/chromium-driver missing and cannot be installed here (needs root and apt-get)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
