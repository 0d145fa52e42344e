"""YAML files that remember where each value came from.

Admins edit hooks and rule files by hand; an error has to name the file, line and column of the
offending key so it can be fixed without guessing. ruamel.yaml keeps positions on every mapping
and sequence; this module turns them into a plain-data document plus a position lookup.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent

Loc = tuple[str | int, ...]

# Deepest nesting a configuration file may have (the bundled rules reach 12). Reading a file
# recurses once per level, so a hostile file must be stopped well before Python's own limit.
MAX_YAML_DEPTH = 100


@dataclass(frozen=True)
class ConfigError:
    """One problem in a configuration file, located for a person to fix."""

    file: str
    line: int
    column: int
    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        key = f" [{self.key}]" if self.key else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{key}: {self.message}{hint}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file, "line": self.line, "column": self.column, "message": self.message,
        }
        if self.key:
            out["key"] = self.key
        if self.hint:
            out["hint"] = self.hint
        return out


class ConfigFileError(Exception):
    """Raised with every error found, not only the first, so an admin fixes them in one pass."""

    def __init__(self, errors: Sequence[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class YamlDocument:
    """Plain Python data from one YAML file, with the position of every key and item."""

    path: str
    data: Any
    _root: Any = field(repr=False, default=None)

    def position(self, loc: Iterable[str | int]) -> tuple[int, int]:
        """1-based (line, column) of the deepest part of ``loc`` that exists in the file."""
        node = self._root
        line, col = 1, 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line, col = node.lc.key(part)
                line, col = line + 1, col + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, col = node.lc.item(part)
                line, col = line + 1, col + 1
                node = node[part]
            else:
                break
        return line, col

    def error(self, loc: Loc, message: str, hint: str = "") -> ConfigError:
        line, col = self.position(loc)
        return ConfigError(self.path, line, col, format_loc(loc), message, hint)


def format_loc(loc: Iterable[str | int]) -> str:
    """``("rules", 2, "when")`` -> ``rules[2].when``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _plain(node: Any) -> Any:
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    return node


class _PlainDataConstructor(RoundTripConstructor):
    """Reads plain data only: a tag ruamel has no plain type for (``!!python/object/apply``,
    ``!include``, any custom tag) is a syntax error at the tag, never an object."""

    def construct_unknown(self, node: Any) -> Any:
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!", 1)
        raise ConstructorError(None, None, f"unknown tag `{tag}`: configuration files hold plain "
                                           "data only", node.start_mark)


_PlainDataConstructor.add_constructor(None, _PlainDataConstructor.construct_unknown)


class _NoAliasComposer(Composer):
    """An alias is a syntax error at the alias: read as plain data, each one is a copy, so a
    few lines of aliases of aliases would expand to millions of nodes (the "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            raise ComposerError(None, None, "an alias (`*name`) is not allowed: write the value out",
                                self.parser.peek_event().start_mark)
        return super().compose_node(parent, index)


def _reader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Composer = _NoAliasComposer
    yaml.Constructor = _PlainDataConstructor
    yaml.allow_duplicate_keys = False
    yaml.max_depth = MAX_YAML_DEPTH
    return yaml


def load_yaml(path: str | Path, display_path: str | None = None) -> YamlDocument:
    """Parse ``path``; a syntax error becomes a ConfigFileError with its line and column."""
    shown = display_path or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        root = _reader().load(text)
    except MaxDepthExceededError as exc:
        mark = exc.problem_mark
        raise ConfigFileError([ConfigError(
            shown, mark.line + 1, mark.column + 1, "",
            f"nested more than {MAX_YAML_DEPTH} levels deep", "flatten the structure")]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigFileError([ConfigError(shown, line, col, "", f"YAML syntax: {problem}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError([ConfigError(shown, 1, 1, "", f"cannot read file: {exc}")]) from None
    return YamlDocument(shown, _plain(root), root)


# ConfigMap keys cannot hold "/": a file ``rules/r01.yaml`` travels as the key ``rules__r01.yaml``.
FLAT_SEPARATOR = "__"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SourceFile:
    """One logical configuration file: its name inside the tree and where it is read from."""

    name: str  # "rules/r01-cauda-equina.yaml", whatever the mount layout
    path: Path


def flat_key(name: str) -> str:
    """The ConfigMap key of logical file ``name``."""
    if FLAT_SEPARATOR in name:
        raise ValueError(f"{name}: a file name may not contain {FLAT_SEPARATOR!r}")
    return name.replace("/", FLAT_SEPARATOR)


def logical_name(relative: str) -> str:
    """The logical name of a file found at ``relative`` (a repository path or a flat key)."""
    return relative.replace(FLAT_SEPARATOR, "/") if "/" not in relative else relative


def source_files(root: str | Path, suffixes: Sequence[str] = YAML_SUFFIXES) -> list[SourceFile]:
    """Every configuration file under ``root`` once, in logical-name order.

    The same files arrive as a repository tree, a flat directory, or a Kubernetes ConfigMap
    volume, where kubelet writes the data into a hidden ``..<timestamp>`` directory, points
    ``..data`` at it and adds one symlink per key. Hidden entries are skipped and a file
    reached twice through symlinks is read once, so every layout yields the same files.
    """
    root = Path(root)
    found: dict[str, SourceFile] = {}
    seen_real: set[str] = set()
    seen_dirs: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real_dir = os.path.realpath(folder)
        if real_dir in seen_dirs:  # a symlink loop or a second way into one directory
            dirs[:] = []
            continue
        seen_dirs.add(real_dir)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith(".") or path.suffix not in suffixes or not path.is_file():
                continue
            real = os.path.realpath(path)
            logical = logical_name(path.relative_to(root).as_posix())
            if real in seen_real:
                continue
            if logical in found:
                raise ConfigFileError([ConfigError(
                    str(path), 1, 1, "", f"the same file as {found[logical].path} ({logical})",
                    "keep one of the two",
                )])
            seen_real.add(real)
            found[logical] = SourceFile(logical, path)
    return [found[name] for name in sorted(found)]


def content_digest(contents: Iterable[bytes]) -> str:
    """A hash of file contents alone: the same set of files gives the same digest in any
    layout, under any names and in any order."""
    combined = hashlib.sha256()
    for digest in sorted(hashlib.sha256(c).digest() for c in contents):
        combined.update(digest)
    return combined.hexdigest()


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest valid spelling, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""


def _fields_at(model: Any, loc: Loc) -> list[str]:
    """Field names of the pydantic model found at ``loc`` inside ``model`` (for spelling hints)."""
    import typing

    from pydantic import BaseModel

    current = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            return []
        current = None
        stack = [info.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                current = ann
                break
            stack.extend(typing.get_args(ann))
    if current is None:
        return []
    fields = []
    for name, info in current.model_fields.items():
        fields.append(info.alias or name)
    return fields


def pydantic_errors(
    doc: YamlDocument, exc: Any, base: Loc = (), model: Any = None
) -> list[ConfigError]:
    """Turn a pydantic ValidationError into located ConfigErrors, one per problem.

    ``model`` (the validated pydantic class) lets an unknown key get a did-you-mean hint.
    """
    errors: list[ConfigError] = []
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        hint = ""
        if err["type"] == "extra_forbidden":
            if model is not None:
                hint = did_you_mean(str(loc[-1]), _fields_at(model, loc[:-1]))
            message = f"unknown key `{loc[-1]}`"
        elif err["type"] == "missing":
            message = f"missing required key `{loc[-1]}`"
        elif err["type"] == "string_type" and isinstance(err.get("input"), int | float):
            value = err["input"]
            found = str(value).lower() if isinstance(value, bool) else f"the number {value:g}"
            message = f"expected text, found {found}"
            hint = "quote it: YAML reads an unquoted number or true/false as one"
        else:
            message = err["msg"]
        errors.append(doc.error(base + loc, message, hint))
    return errors
