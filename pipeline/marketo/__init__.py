"""Marketo's SOAP protocol: envelopes, signing, replies and faults. Pure: no I/O."""
