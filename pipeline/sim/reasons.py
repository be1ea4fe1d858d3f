"""How the REST front-end refuses: a whole call (response level), or one record (record level)."""

from __future__ import annotations


class RestCallError(Exception):
    """Answer the whole call with response-level error `code` (HTTP 200, `success: false`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class RecordSkippedError(Exception):
    """Skip one record with record-level reason `code` (its `status` is `skipped`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
