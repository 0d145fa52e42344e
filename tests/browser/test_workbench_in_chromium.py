"""The admin workbench in a real browser: sign in, upload a changed rule, read the impact table.

Screenshots go to the test's directory; with SPINEHIP_UPDATE_SCREENSHOTS=1 they also replace
the pictures under docs/ that the README shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT
from tests.impact.windows import RULES, SIX_WEEKS, copy_with_window, patients_between
from tests.support.processes import running, spinehip_env, start_spinehip

TOKEN = "browser-admin-token-91f3"
R05 = "rules/r05-spine-pattern-mri.yaml"
DOCS = PROJECT_ROOT / "docs"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("workbench-serve")
    env = spinehip_env(SPINEHIP_MODE="development", SPINEHIP_ADMIN_TOKEN=TOKEN,
                       DATABASE_URL=f"sqlite:///{workdir / 'store.db'}")
    with running(start_spinehip(env, workdir, workers=1)) as served:
        yield served.base_url


def screenshot(driver, tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    driver.find_element("tag name", "body").screenshot(str(target))
    assert target.stat().st_size > 10_000
    if os.environ.get("SPINEHIP_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(target, DOCS / name)


def rows(driver, table_id: str) -> list[list[str]]:
    table = driver.find_element("id", table_id)
    return [[cell.text for cell in row.find_elements("tag name", "td")]
            for row in table.find_elements("css selector", "tbody tr")]


def submit(driver, button) -> None:
    """Click and wait for the answer page: a slow server must not be read as a missing element."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    def left_page(_driver) -> bool:
        # Chromium reports a node of the old document as stale, or as not in the document.
        try:
            page.is_enabled()
        except WebDriverException:
            return True
        return False

    page = driver.find_element("tag name", "html")
    button.click()
    wait = WebDriverWait(driver, 120)
    wait.until(left_page)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def sign_in(driver, base_url: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base_url}/admin/rules")
    driver.find_element("id", "token").send_keys(TOKEN)
    submit(driver, driver.find_element("css selector", "form button[type=submit]"))
    assert driver.find_element("id", "served-version").text


def upload(driver, base_url: str, file: Path) -> None:
    driver.get(f"{base_url}/admin/rules")
    driver.find_element("id", "files").send_keys(str(file))
    submit(driver, driver.find_element("id", "try-button"))


def test_upload_a_changed_window_and_see_which_patients_change(browser, server, tmp_path) -> None:
    sign_in(browser, server)
    cookie = browser.get_cookie("spinehip_admin")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    served = browser.find_element("id", "served-version").text
    assert [r[0] for r in rows(browser, "rules")][:1] == ["cauda-equina"]
    screenshot(browser, tmp_path, "workbench-overview.png")

    # The 6-week window is defined once, in ruleset.yaml: upload that file with 7 weeks.
    upload(browser, server, copy_with_window(tmp_path, 49) / "ruleset.yaml")
    summary = browser.find_element("id", "impact-summary").text
    changes = rows(browser, "impact-changes")
    assert {r[0] for r in changes} == patients_between(SIX_WEEKS, 49)
    kinds = {(r[2], r[3]) for r in changes}
    assert ("spine-pattern-mri", "disappeared") in kinds
    assert ("early-lumbar-imaging", "appeared") in kinds
    assert f"{len(patients_between(SIX_WEEKS, 49))} patients' cards change" in summary
    totals = {r[0]: r for r in rows(browser, "impact-totals")}
    gone = sum(1 for r in changes if r[2:4] == ["spine-pattern-mri", "disappeared"])
    assert totals["spine-pattern-mri"][4] == str(gone)
    assert "failed" in browser.find_element("id", "cases-summary").text
    screenshot(browser, tmp_path, "workbench-impact.png")

    browser.get(f"{server}/admin/rules")
    assert browser.find_element("id", "served-version").text == served


def test_a_broken_rule_shows_its_errors_by_file_and_line(browser, server, tmp_path) -> None:
    sign_in(browser, server)
    broken = tmp_path / "r05-spine-pattern-mri.yaml"
    text = (RULES / R05).read_text()
    broken.write_text(text.replace("    selection: at-most-one", "    selecton: at-most-one"))
    line = next(i for i, row in enumerate(broken.read_text().splitlines(), 1) if "selecton" in row)
    upload(browser, server, broken)
    errors = rows(browser, "trial-errors")
    assert errors and errors[0][0].endswith(f"{R05}:{line}:5")
    assert "selecton" in " ".join(errors[0])
    assert not browser.find_elements("id", "impact-changes")
    screenshot(browser, tmp_path, "workbench-errors.png")
