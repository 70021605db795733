"""Reading config YAML safely, with limits.

A config is a few dozen scalars in three sections, so anything far larger is an
error, reported in one short line, never expanded: a file over `MAX_BYTES`, nesting
deeper than `MAX_DEPTH`, more than `MAX_ALIASES` aliases, a document that aliases
expand to more than `MAX_VALUES` values (a 504-byte alias bomb describes a billion),
an integer of more than `MAX_DIGITS` digits. Numbers are
read as a person writes them: `3e-3` is a float (YAML 1.1 reads it as a string
without a dot in the mantissa).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from s2s.errors import S2SError

__all__ = ["read_yaml", "parse_yaml_value", "short"]

MAX_BYTES = 1 << 20
MAX_DEPTH = 20
MAX_ALIASES = 100
MAX_VALUES = 10_000
MAX_DIGITS = 100

# YAML 1.2's floats (1e3, 3e-3, .5, 1_000.5 as PyYAML has it), where 1.1 needs a
# dot and a signed exponent.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader with limits on depth, aliases and integer length."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _Limit(mark, f"more than {MAX_ALIASES} aliases")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Limit(mark, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node):
        digits = sum(c.isdigit() for c in node.value)
        if digits > MAX_DIGITS:
            raise _Limit(node.start_mark, f"an integer of {digits} digits")
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
# The resolver table is per class: copy it before adding to it.
_Loader.yaml_implicit_resolvers = {
    k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


class _Limit(yaml.MarkedYAMLError):
    def __init__(self, mark, problem: str):
        super().__init__(problem=problem, problem_mark=mark)


def _expanded(node: yaml.Node, memo: dict[int, int | None]) -> int:
    """How many values `node` stands for once every alias is expanded, counting
    each shared node once per reference without expanding anything."""
    key = id(node)
    if key in memo:
        if memo[key] is None:
            raise _Limit(node.start_mark, "an alias refers to itself")
        return memo[key]
    memo[key] = None
    n = 1
    if isinstance(node, yaml.SequenceNode):
        n += sum(_expanded(c, memo) for c in node.value)
    elif isinstance(node, yaml.MappingNode):
        n += sum(_expanded(k, memo) + _expanded(v, memo) for k, v in node.value)
    memo[key] = n
    return n


def _load(text: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded(node, {}) > MAX_VALUES:
            raise _Limit(
                node.start_mark,
                f"aliases expand it to over {MAX_VALUES:,} values (an alias bomb?)",
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _reason(e: Exception) -> str:
    """One line for a YAML error: `line L: problem`."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return where + _cut(e.problem or e.context or "not valid YAML")
    return _cut(str(e).splitlines()[0] if str(e) else type(e).__name__)


def _cut(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def read_yaml(path: Path) -> Any:
    """The YAML document in `path`; errors are one line naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise S2SError(f"{path}: cannot read config: {e.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise S2SError(f"{path}: over {MAX_BYTES >> 20} MiB, too large for a config")
    try:
        return _load(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise S2SError(
            f"{path}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})"
        ) from None
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise S2SError(f"{path}: not valid YAML: {_reason(e)}") from None


def parse_yaml_value(text: str, key: str) -> Any:
    """A `--set` value read as YAML (`[0.9, 0.98]`, `true`, `3e-3`)."""
    try:
        return _load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise S2SError(f"{key}: cannot parse {short(text)}: {_reason(e)}") from None


def short(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to about `limit` characters: error messages stay one short
    line whatever a value holds (a deep list, a 5,000-digit number)."""
    import reprlib

    if isinstance(value, int) and value.bit_length() > 4 * limit:
        # repr() itself refuses over 4,300 digits
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict = 2, 4, 4, 4
    r.maxstring, r.maxother, r.maxlong = limit, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit + 5 else text[:limit] + "..."
