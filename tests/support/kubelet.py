"""Configuration files laid out the ways a deployment mounts them.

kubelet writes a ConfigMap volume atomically: the data go into a hidden ``..<timestamp>``
directory, ``..data`` is a symlink to it, and each key is a symlink ``key -> ..data/key``. An
update writes a new timestamped directory and swaps ``..data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from service.yamlsource import flat_key, source_files


def configmap_volume(target: Path, data: Mapping[str, str],
                     stamp: str = "..2026_12_01_12_00_00.000000001") -> Path:
    """Lay ``data`` (ConfigMap key -> text) out in ``target`` exactly as kubelet does."""
    target.mkdir(parents=True, exist_ok=True)
    payload = target / stamp
    payload.mkdir()
    for key, text in data.items():
        (payload / key).write_text(text, encoding="utf-8")
    (target / "..data").symlink_to(stamp)
    for key in data:
        (target / key).symlink_to(f"..data/{key}")
    return target


def update_configmap_volume(target: Path, data: Mapping[str, str], stamp: str) -> None:
    """kubelet's update: a new payload directory, then ``..data`` swapped to it in one rename."""
    payload = target / stamp
    payload.mkdir()
    for key, text in data.items():
        (payload / key).write_text(text, encoding="utf-8")
    (target / "..data_tmp").symlink_to(stamp)
    (target / "..data_tmp").rename(target / "..data")
    for key in data:
        if not (target / key).is_symlink():
            (target / key).symlink_to(f"..data/{key}")


def flat_data(tree: Path) -> dict[str, str]:
    """A directory tree as ConfigMap data: flat key -> file text."""
    return {flat_key(f.name): f.path.read_text(encoding="utf-8") for f in source_files(tree)}
