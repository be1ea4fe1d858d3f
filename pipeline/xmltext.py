"""Text that is safe inside XML character data: escaping, and refusing what XML 1.0 cannot carry."""

from __future__ import annotations

import re

# Everything XML 1.0 forbids in a document (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF).
_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Anything that needs work: markup characters, CR (a parser would normalise a raw CR away), or illegal ones.
_SPECIAL = re.compile("[&<>\r]|[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class UnencodableTextError(ValueError):
    """A value holds a character that XML 1.0 cannot carry, even escaped."""

    def __init__(self, value: str, position: int) -> None:
        char = value[position]
        super().__init__(f"character U+{ord(char):04X} at position {position} cannot be carried by XML")
        self.position = position


def needs_escaping(text: str) -> bool:
    """True when `text` holds a markup character, a CR or a character XML cannot carry.

    Printable text (Unicode's sense: no controls, separators but space, surrogates, private-use or unassigned
    code points) holds only characters XML carries, so three scans for markup settle it; anything else goes
    through the full pattern, which is several times slower on text that is not ASCII.
    """
    if text.isprintable():
        return "&" in text or "<" in text or ">" in text
    return _SPECIAL.search(text) is not None


def escape_text(text: str) -> str:
    """Escape `text` for character data; raise UnencodableTextError for characters XML forbids."""
    if not needs_escaping(text):
        return text
    bad = _ILLEGAL.search(text)
    if bad is not None:
        raise UnencodableTextError(text, bad.start())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def find_unencodable(text: str) -> UnencodableTextError | None:
    """The error escape_text would raise for `text`, or None."""
    bad = _ILLEGAL.search(text)
    return None if bad is None else UnencodableTextError(text, bad.start())
