from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pipeline.xmltext import UnencodableTextError, escape_text, needs_escaping

# XML 1.0's Char production, written out independently of the module under test.
_XML_CHAR = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_EVERY_CHARACTER = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
_TRICKY = st.sampled_from(["&", "<", ">", "\r", "\t", "\x00", "\x1f", "\ud800", "\ufffe", "\uffff", "\ue000", "東"])


@given(st.text(st.one_of(_EVERY_CHARACTER, _TRICKY), max_size=40))
def test_needs_escaping_is_true_exactly_for_markup_cr_and_illegal_characters(text: str) -> None:
    legal = _XML_CHAR.fullmatch(text) is not None
    assert needs_escaping(text) == (not legal or any(c in text for c in "&<>\r"))


@given(st.text(st.one_of(_EVERY_CHARACTER, _TRICKY), max_size=40))
def test_escape_text_escapes_markup_and_refuses_illegal_characters(text: str) -> None:
    if _XML_CHAR.fullmatch(text) is None:
        try:
            escape_text(text)
        except UnencodableTextError:
            return
        raise AssertionError(f"{text!r} holds a character XML cannot carry")
    escaped = escape_text(text)
    assert not any(c in escaped for c in "<>\r")
    unescaped = escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&#13;", "\r").replace("&amp;", "&")
    assert unescaped == text
