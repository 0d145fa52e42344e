"""The README's first screen does what it says, against a real ``spinehip serve``.

A new user copies the curl command, the service ids and the demo patient ids from it: each must
work as written, and every setting the service reads must be documented. Where the README states
a window or threshold of the rules, it names the parameter beside the bundled rules' value.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

import pytest
import requests

from service import fixtures
from service.cdshooks.services import load_services
from service.config import PROJECT_ROOT
from tests.ops.test_deploy import LIBRARY_ENV, names_the_service_reads
from tests.support.rules import bundled_ruleset

README = (PROJECT_ROOT / "README.md").read_text()
FIRST_SCREEN = README[: README.index("### Configuration")]
RULE_TABLE = README[README.index("| rule (topic) |"):].split("\n\n", 1)[0]
#: A value, then in parentheses the parameters it is the default of: "14 days (`neuro_window`",
#: "6-week (`imaging_wait`, `hip_pattern_duration`)", "50 % (`relief_threshold`".
STATED = re.compile(r"(\d+(?:-[a-z]+| [a-z]+| %)?) \(((?:`[a-z_]+`(?:, )?)+)")
DURATION = re.compile(r"\b\d+(?:-| )(?:minute|hour|day|week|month|year)s?\b")


def curl_post() -> list[str]:
    """The first-screen ``curl ... -X POST`` command as argv (continuation lines joined)."""
    for block in re.findall(r"```sh\n(.*?)```", FIRST_SCREEN, re.S):
        if "curl" in block and "POST" in block:
            return shlex.split(block.replace("\\\n", " "))
    raise AssertionError("the README's first screen shows no curl POST")


def send(argv: list[str], base_url: str) -> requests.Response:
    """Send what ``argv`` (a curl command) would send, to ``base_url`` instead of its host."""
    method, headers, body, url = "GET", {}, None, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data"):
            body = next(args)
        elif arg.startswith("http"):
            url = arg
        elif arg != "-s":
            raise AssertionError(f"unexpected curl argument {arg!r}")
    assert url is not None
    return requests.request(method, base_url + urlsplit(url).path, headers=headers, data=body,
                            timeout=10)


def demo_ids_shown() -> list[str]:
    section = FIRST_SCREEN[FIRST_SCREEN.index("Demo patients"):]
    return re.findall(r"`([a-z0-9-]+)` \(", section.split("\n\n")[0])


def test_the_curl_post_returns_a_card(server) -> None:
    response = send(curl_post(), server)
    assert response.status_code == 200, response.text
    assert response.json()["cards"], "the README promises a card"


def test_the_service_ids_shown_are_the_real_ones() -> None:
    shown = set(re.findall(r"^\| `([a-z-]+)` \| `[a-z-]+` \|$", FIRST_SCREEN, re.M))
    assert shown == {s.id for s in load_services(PROJECT_ROOT / "hooks")}


def test_three_demo_patients_are_shown_and_each_is_answered_with_a_card(server) -> None:
    shown = demo_ids_shown()
    assert len(shown) == 3
    assert set(shown) <= set(fixtures.demo_patient_files(PROJECT_ROOT / "fixtures"))
    for patient_id in shown:
        body = {"hook": "patient-view", "hookInstance": "5b6e7a0c-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
                "context": {"userId": "Practitioner/demo", "patientId": patient_id}}
        response = requests.post(f"{server}/cds-services/spinehip-patient-view", json=body, timeout=10)
        assert response.status_code == 200 and response.json()["cards"], patient_id


@pytest.mark.parametrize("name", sorted(n for n in names_the_service_reads() - LIBRARY_ENV
                                         if n.startswith("SPINEHIP_") or n == "DATABASE_URL"))
def test_every_setting_the_service_reads_is_documented(name: str) -> None:
    assert f"`{name}`" in README


def named_values() -> dict[str, set[str]]:
    """Each named value of the bundled rules and the ways the README may write it."""
    ruleset = bundled_ruleset()
    forms = {name: {format(p), format(p, "adj")} if p.is_duration else {format(p), f"{format(p)} %"}
             for name, p in ruleset.parameters.items()}
    forms["min_age_years"] = {str(ruleset.eligibility.min_age_years)}
    return forms


def test_each_parameter_the_readme_names_is_stated_with_the_bundled_value() -> None:
    """Changing a default in rules/ without the README fails here, and so does naming a
    parameter without its value."""
    forms = named_values()
    stated = [(value, name) for value, names in STATED.findall(README)
              for name in re.findall(r"`([a-z_]+)`", names)]
    assert any(n in forms for _, n in stated), "the README names no parameter with its value"
    assert [(v, n) for v, n in stated if n in forms and v not in forms[n]] == []
    for name in forms:
        assert README.count(f"`{name}`") == sum(n == name for _, n in stated), (
            f"`{name}` is named without the value before it")


def test_the_rule_table_states_no_window_without_its_parameter() -> None:
    """A duration in the rule table is a parameter's value, so it names the parameter."""
    unnamed = [m.group() for m in DURATION.finditer(RULE_TABLE)
               if not RULE_TABLE[m.end():].startswith(" (`")]
    assert RULE_TABLE.count("\n") >= 14
    assert unnamed == []
