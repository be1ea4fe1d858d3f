"""Routing and batch filling (DESIGN 2.3). Pure: no I/O, time is passed in."""
