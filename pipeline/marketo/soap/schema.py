"""Marketo's WSDL, shipped in the package, and XML Schema validators built from its types."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import TYPE_CHECKING, Final

from lxml import etree

from pipeline.marketo.soap.namespace import MKTOWS, SOAP_ENV, XS

if TYPE_CHECKING:
    from lxml.etree._docloader import _InputDocument

WSDL_VERSION: Final = "2_2"

# A SOAP 1.1 envelope whose Header and Body children must be valid Marketo message elements.
_ENVELOPE_XSD: Final = f"""<xs:schema xmlns:xs="{XS}" xmlns:env="{SOAP_ENV}"
    targetNamespace="{SOAP_ENV}" elementFormDefault="qualified">
  <xs:import namespace="{MKTOWS}" schemaLocation="mktows.xsd"/>
  <xs:element name="Envelope">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Header" minOccurs="0">
          <xs:complexType><xs:sequence>
            <xs:any namespace="{MKTOWS}" processContents="strict" minOccurs="0" maxOccurs="unbounded"/>
          </xs:sequence></xs:complexType>
        </xs:element>
        <xs:element name="Body">
          <xs:complexType><xs:choice>
            <xs:any namespace="{MKTOWS}" processContents="strict"/>
            <xs:element ref="env:Fault"/>
          </xs:choice></xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
  <xs:element name="Fault">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="faultcode" type="xs:QName" form="unqualified"/>
        <xs:element name="faultstring" type="xs:string" form="unqualified"/>
        <xs:element name="faultactor" type="xs:anyURI" form="unqualified" minOccurs="0"/>
        <xs:element name="detail" form="unqualified" minOccurs="0">
          <xs:complexType><xs:sequence>
            <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
          </xs:sequence></xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


def wsdl_bytes() -> bytes:
    """The WSDL as Marketo published it (API 2_2; the sync types are unchanged up to 2_7)."""
    return resources.files("pipeline.marketo.soap").joinpath("wsdl/mktows.wsdl").read_bytes()


def _types_schema() -> etree._Element:
    wsdl = etree.fromstring(wsdl_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
    source = wsdl.find(f"{{http://schemas.xmlsoap.org/wsdl/}}types/{{{XS}}}schema")
    if source is None:
        msg = "the packaged WSDL has no types schema"
        raise RuntimeError(msg)
    # A standalone schema document needs its own prefix bindings for the QNames in type="tns:...".
    schema = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS, "tns": MKTOWS}, attrib=dict(source.attrib))
    for child in source:
        schema.append(copy.deepcopy(child))
    return schema


class _SchemaResolver(etree.Resolver):
    def __init__(self, types: bytes) -> None:
        super().__init__()
        self._types = types

    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> _InputDocument | None:
        del public_id
        if system_url is not None and system_url.endswith("mktows.xsd"):
            return self.resolve_string(self._types, context)
        return None


@functools.cache
def types_schema() -> etree.XMLSchema:
    """Validator for Marketo's message elements (`paramsSyncLead`, `successSyncLead`, headers...)."""
    return etree.XMLSchema(_types_schema())


@functools.cache
def envelope_schema() -> etree.XMLSchema:
    """Validator for a whole SOAP 1.1 envelope whose header and body elements are Marketo's."""
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_SchemaResolver(etree.tostring(_types_schema())))
    return etree.XMLSchema(etree.fromstring(_ENVELOPE_XSD.encode(), parser, base_url="envelope.xsd"))


def _local(qname: str | None) -> str:
    return (qname or "").rpartition(":")[2]


@functools.cache
def content_models() -> tuple[dict[str, str], dict[str, tuple[tuple[str, str], ...]]]:
    """What the WSDL's types declare: each message element's type, and each complex type's child elements in order.

    A child is (local name, local type name); a type extending another lists its base's children first.
    """
    schema = _types_schema()
    elements = {e.get("name", ""): _local(e.get("type")) for e in schema.iterchildren(f"{{{XS}}}element")}
    own: dict[str, list[tuple[str, str]]] = {}
    bases: dict[str, str] = {}
    for complex_type in schema.iterchildren(f"{{{XS}}}complexType"):
        name = complex_type.get("name", "")
        extension = complex_type.find(f"{{{XS}}}complexContent/{{{XS}}}extension")
        if extension is not None:
            bases[name] = _local(extension.get("base"))
        own[name] = [(e.get("name", ""), _local(e.get("type"))) for e in complex_type.iter(f"{{{XS}}}element")]

    def children(name: str) -> tuple[tuple[str, str], ...]:
        base = bases.get(name)
        return (*(children(base) if base else ()), *own.get(name, ()))

    return elements, {name: children(name) for name in own}
