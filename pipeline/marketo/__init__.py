"""Marketo's two APIs behind one seam: SOAP (soap/) and REST (rest/). Pure: no I/O."""
