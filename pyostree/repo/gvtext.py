"""A small parser for GVariant text (``g_variant_parse``) as used by ``--add-metadata``.

Supported: strings ('…' or "…" with backslash escapes), booleans, integers and floats with
optional type prefixes (``byte``, ``int16``, ``uint16``, ``int32``, ``uint32``, ``int64``,
``uint64``, ``double``; bare integers are ``i``, bare floats ``d``), ``@TYPE`` annotations
on any value, homogeneous arrays (``['a', 'b']`` is ``as``, ``@as []`` an empty one),
dictionaries (``{'k': <1>}`` is ``a{sv}``, ``@a{sv} {}`` an empty one), variants
(``<'x'>``) and tuples (``('a', 1)``), as ``g_variant_parse`` reads what
``g_variant_print`` writes.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from pyostree.errors import PyOstreeError

__all__ = ["GVariantTextError", "parse_gvariant_text"]

_INT_PREFIXES = {"byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u", "int64": "x", "uint64": "t"}
_INT_RANGES = {
    "y": (0, 0xFF), "n": (-(1 << 15), (1 << 15) - 1), "q": (0, 0xFFFF),
    "i": (-(1 << 31), (1 << 31) - 1), "u": (0, 0xFFFFFFFF),
    "x": (-(1 << 63), (1 << 63) - 1), "t": (0, (1 << 64) - 1),
}
_NUMBER_RE = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "v": "\v"}

Typed = Tuple[str, object]


class GVariantTextError(PyOstreeError, ValueError):
    """The text is not GVariant text this parser understands."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> GVariantTextError:
        return GVariantTextError(f"cannot parse GVariant text {self.text!r}: {what} at offset {self.pos}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def word(self) -> str:
        self.skip_space()
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
        if match is None:
            return ""
        return match.group(0)

    def value(self, expected: Optional[str] = None) -> Typed:
        char = self.peek()
        if char == "@":
            match = re.compile(r"@([a-z{}()]+)").match(self.text, self.pos)
            if match is None:
                raise self.fail("bad type annotation")
            self.pos = match.end()
            annotated = match.group(1)
            if expected is not None and annotated != expected:
                raise self.fail(f"{annotated} where {expected} was expected")
            if _type_end(annotated, 0) != len(annotated):
                raise self.fail(f"bad type annotation {annotated!r}")
            return self.value(annotated)
        if char in ("'", '"'):
            if expected not in (None, "s"):
                raise self.fail(f"string where {expected} was expected")
            return "s", self.string()
        if char == "[":
            return self.array(expected)
        if char == "{":
            return self.dictionary(expected)
        if char == "<":
            if expected not in (None, "v"):
                raise self.fail(f"variant where {expected} was expected")
            self.pos += 1
            inner = self.value()
            self.expect(">")
            return "v", inner
        if char == "(":
            return self.tuple(expected)
        word = self.word()
        if word in ("true", "false"):
            if expected not in (None, "b"):
                raise self.fail(f"boolean where {expected} was expected")
            self.pos += len(word)
            return "b", word == "true"
        if word in _INT_PREFIXES or word == "double":
            self.pos += len(word)
            kind = "d" if word == "double" else _INT_PREFIXES[word]
            if expected not in (None, kind):
                raise self.fail(f"{word} where {expected} was expected")
            return self.number(kind)
        if word:
            raise self.fail(f"unsupported word {word!r}")
        return self.number(expected)

    def number(self, kind: Optional[str]) -> Typed:
        self.skip_space()
        match = _NUMBER_RE.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a number")
        self.pos = match.end()
        literal = match.group(0)
        is_float = not literal.lower().lstrip("+-").startswith("0x") and any(c in literal for c in ".eE")
        if kind is None:
            kind = "d" if is_float else "i"
        if kind == "d":
            return "d", float(int(literal, 0) if literal.lower().lstrip("+-").startswith("0x") else float(literal))
        if kind not in _INT_RANGES:
            raise self.fail(f"a number cannot have type {kind}")
        if is_float:
            raise self.fail("float where an integer was expected")
        number = int(literal, 16) if literal.lower().lstrip("+-").startswith("0x") else int(literal, 10)
        if literal.startswith("-") and literal.lower().lstrip("-").startswith("0x"):
            number = -int(literal[1:], 16)
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise self.fail(f"{number} is out of range for type {kind}")
        return kind, number

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out: List[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unterminated string")
            char = self.text[self.pos]
            self.pos += 1
            if char == quote:
                return "".join(out)
            if char == "\\":
                if self.pos >= len(self.text):
                    raise self.fail("unterminated escape")
                esc = self.text[self.pos]
                self.pos += 1
                if esc in _ESCAPES:
                    out.append(_ESCAPES[esc])
                elif esc == "u":
                    out.append(chr(int(self._hex(4), 16)))
                elif esc == "U":
                    out.append(chr(int(self._hex(8), 16)))
                else:
                    out.append(esc)
            else:
                out.append(char)

    def _hex(self, count: int) -> str:
        digits = self.text[self.pos:self.pos + count]
        if len(digits) != count or not re.fullmatch(r"[0-9a-fA-F]+", digits):
            raise self.fail("bad unicode escape")
        self.pos += count
        return digits

    def array(self, expected: Optional[str]) -> Typed:
        element_type: Optional[str] = None
        if expected is not None:
            if not expected.startswith("a") or len(expected) < 2:
                raise self.fail(f"array where {expected} was expected")
            element_type = expected[1:]
        self.pos += 1  # '['
        values: List[object] = []
        if self.peek() == "]":
            self.pos += 1
            if element_type is None:
                raise self.fail("empty array needs a type annotation such as @as []")
            if element_type.startswith("{"):  # GLib takes @a{sv} [] for an empty dictionary
                return "a" + element_type, {}
            return "a" + element_type, values
        while True:
            kind, value = self.value(element_type)
            if element_type is None:
                element_type = kind
            elif kind != element_type:
                raise self.fail(f"array mixes {element_type} and {kind}")
            values.append(value)
            char = self.peek()
            self.pos += 1
            if char == "]":
                return "a" + element_type, values
            if char != ",":
                raise self.fail("expected ',' or ']'")


    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def dictionary(self, expected: Optional[str]) -> Typed:
        key_type: Optional[str] = None
        value_type: Optional[str] = None
        if expected is not None:
            if not expected.startswith("a{"):
                raise self.fail(f"dictionary where {expected} was expected")
            key_type, value_type = member_types(expected[1:])
        self.pos += 1  # '{'
        entries: Dict[object, object] = {}
        if self.peek() == "}":
            self.pos += 1
            if key_type is None:
                raise self.fail("empty dictionary needs a type annotation such as @a{sv} {}")
            return expected or "", entries
        while True:
            kind, key = self.value(key_type)
            if kind not in _BASIC_TYPES:
                raise self.fail(f"dictionary key of type {kind}")
            self.expect(":")
            value_kind, item = self.value(value_type)
            if key_type is None:
                key_type, value_type = kind, value_kind
            elif kind != key_type or value_kind != value_type:
                raise self.fail("dictionary mixes entry types")
            if isinstance(key, list):
                raise self.fail("unhashable dictionary key")
            entries[key] = item
            char = self.peek()
            self.pos += 1
            if char == "}":
                return "a{" + key_type + str(value_type) + "}", entries
            if char != ",":
                raise self.fail("expected ',' or '}'")

    def tuple(self, expected: Optional[str]) -> Typed:
        members: Optional[List[str]] = None
        if expected is not None:
            if not expected.startswith("("):
                raise self.fail(f"tuple where {expected} was expected")
            members = member_types(expected)
        self.pos += 1  # '('
        kinds: List[str] = []
        values: List[object] = []
        while self.peek() != ")":
            index = len(values)
            if members is not None and index >= len(members):
                raise self.fail("too many tuple members")
            kind, item = self.value(members[index] if members is not None else None)
            kinds.append(kind)
            values.append(item)
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != ")":
                raise self.fail("expected ',' or ')'")
        self.pos += 1
        if members is not None and len(values) != len(members):
            raise self.fail("too few tuple members")
        return "(" + "".join(kinds) + ")", tuple(values)


_BASIC_TYPES = frozenset("bynqiuxthdsog")


def _type_end(type_string: str, start: int) -> int:
    """Index just after the complete type at START; -1 when it is not one."""
    if start >= len(type_string):
        return -1
    char = type_string[start]
    if char in "am":
        return _type_end(type_string, start + 1)
    if char == "{":
        key_end = _type_end(type_string, start + 1)
        if key_end < 0 or type_string[start + 1] not in _BASIC_TYPES:
            return -1
        value_end = _type_end(type_string, key_end)
        if value_end < 0 or value_end >= len(type_string) or type_string[value_end] != "}":
            return -1
        return value_end + 1
    if char == "(":
        pos = start + 1
        while pos < len(type_string) and type_string[pos] != ")":
            pos = _type_end(type_string, pos)
            if pos < 0:
                return -1
        return pos + 1 if pos < len(type_string) else -1
    return start + 1 if char in _BASIC_TYPES or char == "v" else -1


def member_types(type_string: str) -> List[str]:
    """The member types of a tuple or dict-entry type string (``show`` and ``ls -X`` print
    with it too)."""
    members, pos = [], 1
    while pos < len(type_string) - 1:
        end = _type_end(type_string, pos)
        members.append(type_string[pos:end])
        pos = end
    return members


def parse_gvariant_text(text: str) -> Typed:
    """Parse one value; returns ``(type_string, value)`` in ``pyostree.gvariant``'s mapping."""
    parser = _Parser(text)
    result = parser.value()
    if parser.peek() != "":
        raise parser.fail("trailing characters")
    return result
