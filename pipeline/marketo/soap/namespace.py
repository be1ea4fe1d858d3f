"""XML namespaces of Marketo's SOAP API (SOAP 1.1, document/literal, unqualified local elements)."""

from typing import Final

SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
MKTOWS: Final = "http://www.marketo.com/mktows/"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XS: Final = "http://www.w3.org/2001/XMLSchema"

CONTENT_TYPE: Final = "text/xml; charset=UTF-8"


def soap_action(operation: str) -> str:
    """The SOAPAction header the WSDL binding names for `operation`."""
    return f'"{MKTOWS}{operation}"'
