"""The repository ``config`` file: a GLib keyfile, and the storage mode it declares.

The parser keeps every line (comments, unknown groups and keys) so that a writer can
change one key and write the file back without losing anything libostree or a human put
there.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple, Union, overload

from pyostree.errors import RepoError

#: A config larger than this is not a config; refuse rather than read it whole.
MAX_CONFIG_SIZE = 1 << 20


class RepoMode(enum.Enum):
    """Storage modes pyostree reads; the value is the spelling ``ostree init`` writes."""

    ARCHIVE = "archive-z2"
    BARE = "bare"
    BARE_USER = "bare-user"
    BARE_USER_ONLY = "bare-user-only"

    @classmethod
    def parse(cls, text: str) -> RepoMode:
        """Accept what libostree accepts in ``core.mode`` (``archive`` and ``archive-z2``)."""
        if text == "archive":
            return cls.ARCHIVE
        if text == "bare-split-xattrs":
            raise RepoError("Unsupported repository mode 'bare-split-xattrs' (experimental in ostree)")
        for mode in cls:
            if mode.value == text:
                return mode
        raise RepoError(f"Invalid mode '{text}' in repository configuration")

    @property
    def is_archive(self) -> bool:
        return self is RepoMode.ARCHIVE

    @property
    def is_bare(self) -> bool:
        return self is not RepoMode.ARCHIVE


_GROUP_RE = re.compile(r"^\[([^\[\]\x00-\x1f\x7f]*)\]$")
_INT_RE = re.compile(r"^\s*[+-]?[0-9]+$")
#: What GLib's g_ascii_isspace() accepts; never Unicode spaces such as U+00A0.
_ASCII_SPACE = " \t\n\r\f\v"
_ESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


@dataclass
class _Entry:
    """One line of the file: a key/value pair, or a raw comment/blank line (key None)."""

    key: Optional[str]
    raw: str


@dataclass
class _Group:
    name: str
    header: str
    entries: List[_Entry]


def _unescape(raw: str) -> str:
    out: List[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _escape(value: str) -> str:
    """g_key_file_set_string's escaping: spaces and tabs only while still leading."""
    out: List[str] = []
    leading = True
    for ch in value:
        if ch == " " and leading:
            out.append("\\s")
        elif ch == "\t" and leading:
            out.append("\\t")
        elif ch in "\n\r\\":
            out.append({"\n": "\\n", "\r": "\\r", "\\": "\\\\"}[ch])
        else:
            out.append(ch)
            leading = False
    return "".join(out)


def _split_key(line: str) -> Tuple[str, str]:
    key, _, value = line.partition("=")
    return key.rstrip(_ASCII_SPACE), value.lstrip(_ASCII_SPACE)


class RepoConfig:
    """A GLib keyfile that round-trips: ``RepoConfig.parse(text).to_text() == text``."""

    def __init__(self) -> None:
        self._preamble: List[str] = []
        self._groups: List[_Group] = []

    @classmethod
    def parse(cls, text: str) -> RepoConfig:
        """Parse keyfile TEXT; RepoError (one line) on anything GLib would reject."""
        config = cls()
        current: Optional[_Group] = None
        for lineno, line in enumerate(text.split("\n"), start=1):
            stripped = line.lstrip(_ASCII_SPACE)
            if not stripped or stripped.startswith("#"):
                if current is None:
                    config._preamble.append(line)
                else:
                    current.entries.append(_Entry(None, line))
                continue
            if stripped.startswith("["):
                match = _GROUP_RE.match(stripped.rstrip(_ASCII_SPACE))
                if match is None or not match.group(1):
                    raise RepoError(f"Invalid group name in config line {lineno}: {line!r}")
                current = config._group(match.group(1), create=True, header=line)
                continue
            if "=" not in stripped:
                raise RepoError(
                    f"Config line {lineno} is not a key-value pair, group, or comment: {line!r}"
                )
            key, _ = _split_key(stripped)
            if not key or "[" in key and not key.endswith("]"):
                raise RepoError(f"Invalid key name in config line {lineno}: {line!r}")
            if current is None:
                raise RepoError("Config file does not start with a group")
            current.entries.append(_Entry(key, line))
        return config

    def _sections(self, name: str) -> List[_Group]:
        """Every ``[NAME]`` section, in file order (GLib merges repeated groups)."""
        return [group for group in self._groups if group.name == name]

    def _group(self, name: str, *, create: bool = False, header: str = "") -> _Group:
        """The section a new line for NAME goes to: a new one when HEADER is given."""
        sections = self._sections(name)
        if sections and not header:
            return sections[-1]
        if not create:
            raise KeyError(name)
        group = _Group(name, header or f"[{name}]", [])
        self._groups.append(group)
        return group

    def _entries(self, name: str) -> List[_Entry]:
        return [entry for group in self._sections(name) for entry in group.entries]

    def to_text(self) -> str:
        """The file text; unchanged lines come back byte for byte."""
        lines: List[str] = list(self._preamble)
        for group in self._groups:
            lines.append(group.header)
            lines.extend(entry.raw for entry in group.entries)
        return "\n".join(lines)

    # -- reading --------------------------------------------------------------

    def groups(self) -> List[str]:
        return list(dict.fromkeys(group.name for group in self._groups))

    def keys(self, group: str) -> List[str]:
        seen: Dict[str, None] = {}
        for entry in self._entries(group):
            if entry.key is not None:
                seen[entry.key] = None
        return list(seen)

    def has_group(self, group: str) -> bool:
        return group in self.groups()

    def get_raw(self, group: str, key: str) -> Optional[str]:
        """The value as written (escapes kept); the last one wins like in GLib."""
        value: Optional[str] = None
        for entry in self._entries(group):
            if entry.key == key:
                value = _split_key(entry.raw.lstrip(_ASCII_SPACE))[1]
        return value

    @overload
    def get(self, group: str, key: str) -> Optional[str]: ...

    @overload
    def get(self, group: str, key: str, default: str) -> str: ...

    @overload
    def get(self, group: str, key: str, default: Optional[str]) -> Optional[str]: ...

    def get(self, group: str, key: str, default: Optional[str] = None) -> Optional[str]:
        """The string value with GLib escapes (``\\s \\n \\t \\r \\\\``) decoded."""
        raw = self.get_raw(group, key)
        return default if raw is None else _unescape(raw)

    def getbool(self, group: str, key: str, default: bool = False) -> bool:
        raw = self.get_raw(group, key)
        if raw is None:
            return default
        value = raw.rstrip(_ASCII_SPACE)
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        raise RepoError(f"Config value {group}.{key}={raw!r} cannot be interpreted as a boolean")

    def getint(self, group: str, key: str, default: int = 0) -> int:
        raw = self.get_raw(group, key)
        if raw is None:
            return default
        if not _INT_RE.match(raw):
            raise RepoError(f"Config value {group}.{key}={raw!r} cannot be interpreted as a number")
        return int(raw)

    def getlist(self, group: str, key: str) -> List[str]:
        """A ``;``-separated list (``\\;`` escapes a separator; a trailing ``;`` is optional)."""
        raw = self.get_raw(group, key)
        if raw is None:
            return []
        items: List[str] = []
        current: List[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw):
                current.append(";" if raw[i + 1] == ";" else raw[i:i + 2])
                i += 2
                continue
            if ch == ";":
                items.append(_unescape("".join(current)))
                current = []
            else:
                current.append(ch)
            i += 1
        if current:
            items.append(_unescape("".join(current)))
        return items

    def remotes(self) -> List[str]:
        """Names of the ``[remote "NAME"]`` groups, in file order."""
        names: List[str] = []
        for group in self.groups():
            if group.startswith('remote "') and group.endswith('"') and len(group) > 9:
                names.append(group[8:-1])
        return names

    def items(self, group: str) -> Iterator[Tuple[str, str]]:
        for key in self.keys(group):
            value = self.get(group, key)
            if value is not None:
                yield key, value

    # -- editing (for the write side) ------------------------------------------

    def set(self, group: str, key: str, value: Union[str, bool, int]) -> None:
        """Set KEY in GROUP (created at the end if missing), keeping every other line."""
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = _escape(value)
        line = f"{key}={text}"
        matches = [entry for entry in self._entries(group) if entry.key == key]
        if matches:  # GLib replaces the value that wins (the last) and keeps the others
            matches[-1].raw = line
            return
        found = self._group(group, create=True)
        # Insert after the last key so trailing blank lines stay between groups.
        last_key = max((i for i, e in enumerate(found.entries) if e.key is not None), default=-1)
        found.entries.insert(last_key + 1, _Entry(key, line))

    def remove(self, group: str, key: Optional[str] = None) -> bool:
        """Remove KEY (its last line, as g_key_file_remove_key) from GROUP, or the whole GROUP
        when KEY is None; False if it was missing."""
        if key is None:
            found = self.has_group(group)
            self._groups = [g for g in self._groups if g.name != group]
            return found
        for section in reversed(self._sections(group)):  # GLib drops only the winning one
            for index in range(len(section.entries) - 1, -1, -1):
                if section.entries[index].key == key:
                    del section.entries[index]
                    return True
        return False

    def to_keyfile_text(self) -> str:
        """What ``g_key_file_to_data`` writes for this file as libostree loads it (no
        KEEP_COMMENTS): comments and blank lines dropped, repeated groups merged, each
        group after the first preceded by one blank line, ``key=value`` with the value as
        written (repeated keys kept). ``ostree config set`` rewrites the file this way."""
        out: List[str] = []
        length = 0
        for name in self.groups():
            if length >= 2 and out[-1][-2:-1] != "\n":
                out.append("\n")
            out.append(f"[{name}]\n")
            for entry in self._entries(name):
                if entry.key is not None:
                    value = _split_key(entry.raw.lstrip(_ASCII_SPACE))[1]
                    out.append(f"{entry.key}={value}\n")
            length = sum(len(part) for part in out)
        return "".join(out)


def parse_core(config: RepoConfig) -> RepoMode:
    """Validate ``[core]`` the way libostree does on open and return the mode."""
    if config.getbool("core", "archive"):
        raise RepoError("Unsupported legacy 'archive' repository; use archive-z2 instead")
    version = config.get("core", "repo_version")
    if version is None:
        raise RepoError("Config has no key 'repo_version' in group 'core'")
    if version != "1":
        raise RepoError(f"Invalid repository version '{version}'")
    return RepoMode.parse(config.get("core", "mode", "bare"))
