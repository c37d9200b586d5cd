"""A small parser for GVariant text (``g_variant_parse``) as used by ``--add-metadata``.

Supported: strings ('…' or "…" with backslash escapes), booleans, integers and floats with
optional type prefixes (``byte``, ``int16``, ``uint16``, ``int32``, ``uint32``, ``int64``,
``uint64``, ``double``; bare integers are ``i``, bare floats ``d``), ``@TYPE`` annotations
on those and on arrays, and homogeneous arrays of any of these (``['a', 'b']`` is ``as``,
``@as []`` an empty one).
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

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
            return self.value(match.group(1))
        if char in ("'", '"'):
            if expected not in (None, "s"):
                raise self.fail(f"string where {expected} was expected")
            return "s", self.string()
        if char == "[":
            return self.array(expected)
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


def parse_gvariant_text(text: str) -> Typed:
    """Parse one value; returns ``(type_string, value)`` in ``pyostree.gvariant``'s mapping."""
    parser = _Parser(text)
    result = parser.value()
    if parser.peek() != "":
        raise parser.fail("trailing characters")
    return result
