"""Parsing XML that came over the network: no DTDs, no entities, no network access, a size cap."""

from __future__ import annotations

from typing import Final

from lxml import etree

from pipeline.errors import RetryableError

DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024


class ResponseError(RetryableError):
    """A reply that is not a usable SOAP document (malformed, hostile, or not what the call expects)."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
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
