"""The rule and hook loaders see each logical file once, however the files are mounted.

The same rule set arrives as the repository tree, a flat directory of ConfigMap keys, or a
kubelet ConfigMap volume (hidden payload directory, ``..data`` symlink, one symlink per key).
Each layout must load the same files once and give the same content-only version.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.cdshooks.services import load_services
from service.config import PROJECT_ROOT
from service.engine import RuleRegistry, load_ruleset
from service.yamlsource import ConfigFileError, source_files
from tests.support.kubelet import configmap_volume, flat_data, update_configmap_volume

RULES = PROJECT_ROOT / "rules"
HOOKS = PROJECT_ROOT / "hooks"


def write_flat(target: Path, data: dict[str, str]) -> Path:
    target.mkdir(parents=True)
    for key, text in data.items():
        (target / key).write_text(text, encoding="utf-8")
    return target


@pytest.fixture(params=["flat", "kubelet"])
def mounted_rules(request, tmp_path: Path) -> Path:
    data = flat_data(RULES)
    if request.param == "flat":
        return write_flat(tmp_path / "rules", data)
    return configmap_volume(tmp_path / "rules", data)


def test_every_layout_yields_the_repository_files_once(mounted_rules: Path) -> None:
    repo = {f.name: f.path.read_bytes() for f in source_files(RULES)}
    mounted = [f.name for f in source_files(mounted_rules)]
    assert len(mounted) == len(set(mounted)), "a file was seen twice"
    assert {n: (mounted_rules / n.replace("/", "__")).read_bytes() for n in mounted} == repo
    assert "rules/r01-cauda-equina.yaml" in mounted


def test_every_layout_loads_with_the_repository_version(mounted_rules: Path) -> None:
    repo = load_ruleset(RULES)
    mounted = load_ruleset(mounted_rules)
    assert mounted.full_version == repo.full_version
    assert len(mounted.rules) == len(repo.rules) and len(mounted.files) == len(repo.files)


def test_hooks_in_a_kubelet_volume_load_once(tmp_path: Path) -> None:
    volume = configmap_volume(tmp_path / "hooks", flat_data(HOOKS))
    assert sorted(s.id for s in load_services(volume)) == sorted(s.id for s in load_services(HOOKS))


def test_version_ignores_names_and_places_but_not_content(tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(RULES, moved)
    (moved / "rules" / "r01-cauda-equina.yaml").rename(moved / "renamed-r01.yaml")
    repo = load_ruleset(RULES).full_version
    assert load_ruleset(moved).full_version == repo
    edited = moved / "renamed-r01.yaml"
    edited.write_text(edited.read_text() + "\n# an admin's note\n")
    assert load_ruleset(moved).full_version != repo


def test_hidden_files_and_symlinked_twins_are_not_read_again(tmp_path: Path) -> None:
    tree = tmp_path / "rules"
    shutil.copytree(RULES, tree)
    (tree / ".ruleset.yaml.swp").write_text("ruleset: editor-junk\n")
    (tree / "again.yaml").symlink_to("ruleset.yaml")
    (tree / "loop").symlink_to(".")
    assert load_ruleset(tree).full_version == load_ruleset(RULES).full_version


def test_one_file_under_two_names_is_refused(tmp_path: Path) -> None:
    tree = tmp_path / "rules"
    shutil.copytree(RULES, tree)
    shutil.copy(tree / "rules" / "r01-cauda-equina.yaml", tree / "rules__r01-cauda-equina.yaml")
    with pytest.raises(ConfigFileError, match="the same file as"):
        load_ruleset(tree)


def test_a_configmap_update_is_picked_up_by_the_running_registry(tmp_path: Path) -> None:
    data = flat_data(RULES)
    volume = configmap_volume(tmp_path / "rules", data)
    registry = RuleRegistry(volume)
    before = registry.current.full_version
    assert not registry.check_for_changes()
    data["ruleset.yaml"] += "\n# reviewed\n"
    update_configmap_volume(volume, data, "..2026_12_01_13_00_00.000000002")
    assert registry.check_for_changes()
    assert registry.current.full_version != before
