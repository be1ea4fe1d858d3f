"""Helpers for comparing XML structurally in tests."""

from __future__ import annotations

from lxml import etree


def canonical(data: bytes) -> bytes:
    """C14N of `data` with insignificant whitespace removed: equal for structurally equal documents."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.tostring(etree.fromstring(data, parser), method="c14n2", strip_text=True)


def body_of(data: bytes) -> etree._Element:
    """The payload element inside the SOAP Body."""
    root = etree.fromstring(data)
    body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    return body[0]
