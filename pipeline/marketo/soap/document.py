"""Parsing XML that came over the network: no DTDs, no entities, no network access, a size cap."""

from __future__ import annotations

from typing import Final

from lxml import etree

from pipeline.errors import RetryableError

DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024


class ResponseError(RetryableError):
    """A reply that is not a usable SOAP document (malformed, hostile, or not what the call expects)."""

    reason = "bad_response"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,  # SOAP has no xml:id; collecting them costs a third of the parse
    )


_PARSER: Final = _parser()


def parse_document(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """The root element of `data`; raises ResponseError for oversize, DTD-bearing or malformed input."""
    if len(data) > max_bytes:
        msg = f"document of {len(data)} bytes exceeds the {max_bytes}-byte cap"
        raise ResponseError(msg)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        msg = "document declares a DTD or entities; refused"
        raise ResponseError(msg)
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        msg = f"malformed XML: {exc}"
        raise ResponseError(msg) from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        msg = "document declares a DTD; refused"
        raise ResponseError(msg)
    return root


_NIL: Final = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_TRUE: Final = frozenset({"true", "1"})


def child_map(element: etree._Element) -> dict[str, etree._Element]:
    """The children of a WSDL record by tag.

    Iterating children is several times faster than `find()`, whose path handling runs in Python.
    The WSDL's record types have unique child names, so one entry per tag loses nothing.
    """
    return {child.tag: child for child in element}  # type: ignore[misc]


def text_of(child: etree._Element | None) -> str | None:
    """The text of an optional element: None when absent or `xsi:nil`, "" when empty."""
    if child is None:
        return None
    text = child.text
    if text is None:
        return None if child.get(_NIL) in _TRUE else ""
    return text


def pair_of(element: etree._Element, name_tag: str, value_tag: str) -> tuple[str, str]:
    """(name, value) of an `attribute` or `attrib` element; a missing part reads as ""."""
    name = value = ""
    for child in element:
        if child.tag == name_tag:
            name = child.text or ""
        elif child.tag == value_tag:
            value = child.text or ""
    return name, value


def pairs_of(parent: etree._Element | None, name_tag: str, value_tag: str) -> tuple[tuple[str, str], ...]:
    """(name, value) of every `attribute`/`attrib` under a schema-valid list, in order.

    The schema makes each item exactly one name then one value, so the texts alternate; walking them
    with `iter` in C is several times faster than visiting each item's children from Python.
    """
    if parent is None:
        return ()
    texts = [element.text or "" for element in parent.iter(name_tag, value_tag)]
    return tuple(zip(texts[::2], texts[1::2], strict=True))
