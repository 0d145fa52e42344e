"""Headless Chromium from Debian's packages, driven by Selenium, against a real server process.

``make test`` and ``.ci/run`` install ``chromium`` and ``chromium-driver`` where missing
(scripts/browser-deps.sh). Here the browser is skipped only when it is not installed, with the
reason; in CI (CI=true) that is a failure, as for the local FHIR server.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--window-size=1400,1800")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import WebDriverException

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        _unavailable(f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver; "
                     "scripts/browser-deps.sh does it as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"spinehip-chromium-{os.getpid()}"
    options.add_argument(f"--user-data-dir={profile}")
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(str(CHROMEDRIVER)),
                                  options=options)
    except WebDriverException as exc:
        _unavailable(f"headless Chromium did not start: {exc.msg}")
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
