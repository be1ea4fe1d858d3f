"""A Marketo SOAP simulator: the real WSDL, Marketo's sync semantics and limits, injectable faults."""
