"""Marketo's SOAP API (2_2): envelopes, signing, replies and faults, with lxml."""
