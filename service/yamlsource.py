"""YAML files that remember where each value came from.

Admins edit hooks and rule files by hand; an error has to name the file, line and column of the
offending key so it can be fixed without guessing. ruamel.yaml keeps positions on every mapping
and sequence; this module turns them into a plain-data document plus a position lookup.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.tag import Tag

Loc = tuple[str | int, ...]

# Deepest nesting a configuration file may have (the bundled rules reach 12). Reading a file
# recurses once per level, so a hostile file must be stopped well before Python's own limit.
MAX_YAML_DEPTH = 100
# Reading costs about 2 s per MB of block YAML and 8 s per MB of flow YAML, inside a reload
# request: the largest bundled file is 13 kB, so 512 KiB leaves a wide margin and keeps one file
# to a few seconds. A tree of more files than any deployment writes is refused before reading.
MAX_FILE_BYTES = 512 * 1024
MAX_FILES = 500
# Longer number literals are never meant: Python refuses integers of more than 4300 digits.
MAX_NUMBER_DIGITS = 30
# Errors shown to a person (the CLI, the reload answer, the log); the count says what is left.
MAX_REPORTED_ERRORS = 100

CORE_TAG = "tag:yaml.org,2002:"
STR_TAG = CORE_TAG + "str"
MERGE_TAG = CORE_TAG + "merge"
NUMBER_TAGS = frozenset({CORE_TAG + "int", CORE_TAG + "float"})
# Written out, these say what the value already is; every other tag asks for something else.
PLAIN_TAGS = frozenset(CORE_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))
NOT_REGULAR = "not a regular file (a dangling link, a FIFO or a device): remove it"


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


def reported(errors: Sequence[ConfigError]) -> list[ConfigError]:
    """The errors a person is shown: the first ones, as fixing them often clears the rest, and
    thousands would bury them (and swell a log line or an HTTP answer by megabytes)."""
    return list(errors[:MAX_REPORTED_ERRORS])


class ConfigFileError(Exception):
    """Raised with every error found, not only the first, so an admin fixes them in one pass."""

    def __init__(self, errors: Sequence[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(self.report_lines()))

    def report_lines(self) -> list[str]:
        """One line per reported error, and a last one counting those left out."""
        lines = [str(e) for e in reported(self.errors)]
        left = len(self.errors) - len(lines)
        if left:
            lines.append(f"... and {left} more ({len(self.errors)} errors in all)")
        return lines


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
            where = _written_at(node, part)
            if where is None:  # not in the file, or not written where it is read: the parent
                break
            line, col = where[0] + 1, where[1] + 1
            node = node[part]
        return line, col

    def error(self, loc: Loc, message: str, hint: str = "") -> ConfigError:
        line, col = self.position(loc)
        return ConfigError(self.path, line, col, format_loc(loc), message, hint)


def _written_at(node: Any, part: str | int) -> tuple[int, int] | None:
    """0-based (line, column) of ``part`` in ``node``, when the file holds it there."""
    held = (isinstance(node, CommentedMap) and part in node) or (
        isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node))
    where = node.lc.data.get(part) if held else None
    return (where[0], where[1]) if where else None


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
    """A value that cannot be built (``2026-02-30``, ``!!int abc``) is an error at the value."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, LookupError, TypeError, ArithmeticError) as exc:
            raise ConstructorError(None, None, f"cannot read this value: {exc}",
                                   node.start_mark) from None


def _tag_problem(tag: str) -> str:
    """Unknown to a configuration file, even a tag YAML knows (``!!binary``, ``!!set``)."""
    return (f"unknown tag `{tag.replace(CORE_TAG, '!!', 1)}`: configuration files hold plain "
            "data only (mappings, lists, text, numbers, true/false, null)")


def _key_problem(key: Node) -> str | None:
    """Why a mapping key is refused: a key is text, and a merge key (`<<`) would bring in
    keys written elsewhere, which positions and duplicate checks cannot follow."""
    if key.tag == MERGE_TAG:
        return "a merge key (`<<`) is not allowed: write the keys out"
    if isinstance(key, ScalarNode) and key.tag == STR_TAG:
        return None
    found = f"`{key.value}`" if isinstance(key, ScalarNode) else f"a {key.id}"
    return f"a key must be text, found {found}: quote it"


def _number_problem(node: Node) -> str | None:
    if node.tag in NUMBER_TAGS and sum(c.isdigit() for c in node.value) > MAX_NUMBER_DIGITS:
        return f"a number of more than {MAX_NUMBER_DIGITS} digits: no setting needs one"
    return None


class _PlainDataComposer(Composer):
    """Plain data only, refused at the place written:

    - an alias: read as plain data each one is a copy, so a few lines of aliases of aliases
      would expand to millions of nodes (the "billion laughs");
    - a tag other than the plain ones (``!!python/object/apply``, ``!include``, ``!!binary``,
      ``!!set``...): it asks for an object, or for a type no setting has;
    - a key that is not text, a merge key, and a number too long to be meant.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            raise ComposerError(None, None, "an alias (`*name`) is not allowed: write the value out",
                                event.start_mark)
        tag = getattr(event, "ctag", None)
        if tag is not None:
            if str(tag) not in PLAIN_TAGS:
                raise ComposerError(None, None, _tag_problem(str(tag)), event.start_mark)
            event.ctag = Tag(suffix=str(tag))  # read as if unwritten: a plain value, not a tagged one
        node = super().compose_node(parent, index)
        self._check(node)
        return node

    @staticmethod
    def _check(node: Node) -> None:
        if isinstance(node, MappingNode):
            for key, _ in node.value:
                if problem := _key_problem(key):
                    raise ComposerError(None, None, problem, key.start_mark)
        elif problem := _number_problem(node):
            raise ComposerError(None, None, problem, node.start_mark)


def _reader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Composer = _PlainDataComposer
    yaml.Constructor = _PlainDataConstructor
    yaml.allow_duplicate_keys = False
    yaml.max_depth = MAX_YAML_DEPTH
    return yaml


def _line_column(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of character ``index`` of ``text``."""
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def _file_error(shown: str, message: str, where: tuple[int, int] = (1, 1)) -> ConfigFileError:
    return ConfigFileError([ConfigError(shown, *where, "", message)])


def read_source(path: str | Path, shown: str | None = None) -> bytes:
    """The bytes of a configuration file, refused (ConfigFileError) unless it is a regular
    file of at most MAX_FILE_BYTES: a FIFO would block the reader, a device or a huge file
    would hold it for minutes."""
    shown = shown or str(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise _file_error(shown, NOT_REGULAR)
        if info.st_size > MAX_FILE_BYTES:
            raise _file_error(shown, _too_large(info.st_size))
        # Non-blocking, should a FIFO take the file's place after the check.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _file_error(shown, NOT_REGULAR) from None
    except OSError as exc:
        raise _file_error(shown, f"cannot read file: {exc.strerror or exc}") from None
    if len(content) > MAX_FILE_BYTES:
        raise _file_error(shown, _too_large(len(content)))
    return content


def _too_large(size: int) -> str:
    return f"the file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes: split it"


def _decoded(content: bytes, shown: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = content[:exc.start].decode("utf-8", "replace")
        where = _line_column(before, len(before))
        raise _file_error(shown, f"not UTF-8 text (byte {exc.start})", where) from None


def parse_yaml(content: bytes, shown: str) -> YamlDocument:
    """Parse one file's bytes; any problem becomes a ConfigFileError with its line and column."""
    text = _decoded(content, shown)
    try:
        root = _reader().load(text)
    except MaxDepthExceededError as exc:
        mark = exc.problem_mark
        raise ConfigFileError([ConfigError(
            shown, mark.line + 1, mark.column + 1, "",
            f"nested more than {MAX_YAML_DEPTH} levels deep", "flatten the structure")]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise _file_error(shown, f"YAML syntax: {problem}", where) from None
    except ReaderError as exc:
        raise _file_error(shown, f"YAML syntax: unacceptable character #x{exc.character:04x}: "
                                 f"{exc.reason}", _line_column(text, exc.position)) from None
    except YAMLError as exc:  # an error ruamel gives no position: still the file's, not a crash
        raise _file_error(shown, f"YAML syntax: {exc}") from None
    return YamlDocument(shown, _plain(root), root)


def load_yaml(path: str | Path, display_path: str | None = None) -> YamlDocument:
    """Read and parse ``path``; every problem becomes a located ConfigFileError."""
    shown = display_path or str(path)
    return parse_yaml(read_source(path, shown), shown)


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
    reached twice through symlinks is read once, so every layout yields the same files. A
    configuration name that is no regular file (a dangling link, a FIFO, a device) is an error,
    never skipped in silence nor opened.
    """
    root = Path(root)
    found: dict[str, SourceFile] = {}
    seen_real: set[str] = set()
    errors: list[ConfigError] = []
    for path in _named_files(root, suffixes):
        if not _is_regular(path):
            errors.append(ConfigError(str(path), 1, 1, "", NOT_REGULAR))
            continue
        real = os.path.realpath(path)
        logical = logical_name(path.relative_to(root).as_posix())
        if real in seen_real:
            continue
        if logical in found:
            errors.append(ConfigError(str(path), 1, 1, "", f"the same file as {found[logical].path} "
                                                           f"({logical})", "keep one of the two"))
            continue
        seen_real.add(real)
        found[logical] = SourceFile(logical, path)
    if errors:
        raise ConfigFileError(errors)
    return [found[name] for name in sorted(found)]


def _named_files(root: Path, suffixes: Sequence[str]) -> Iterator[Path]:
    """Each non-hidden entry under ``root`` named like a configuration file, each directory
    walked once; more than MAX_FILES of them is an error, before any is read."""
    seen_dirs: set[str] = set()
    count = 0
    for folder, dirs, files in os.walk(root, followlinks=True):
        real_dir = os.path.realpath(folder)
        if real_dir in seen_dirs:  # a symlink loop or a second way into one directory
            dirs[:] = []
            continue
        seen_dirs.add(real_dir)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith(".") or path.suffix not in suffixes:
                continue
            count += 1
            if count > MAX_FILES:
                raise _file_error(str(root), f"more than {MAX_FILES} configuration files: "
                                             "this is not a configuration directory")
            yield path


def _is_regular(path: Path) -> bool:
    """True for a regular file, through links; looked at without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


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


def _unquoted(value: bool | float | date) -> str:
    """What YAML made of an unquoted text: ``true``, ``the number 1000``, ``the date 2026-01-01``."""
    if isinstance(value, bool):
        return str(value).lower()
    return f"the date {value.isoformat()}" if isinstance(value, date) else f"the number {value:g}"


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
        elif err["type"] == "string_type" and isinstance(err.get("input"), int | float | date):
            message = f"expected text, found {_unquoted(err['input'])}"
            hint = "quote it: YAML reads an unquoted number, date or true/false as one"
        else:
            message = err["msg"]
        errors.append(doc.error(base + loc, message, hint))
    return errors
