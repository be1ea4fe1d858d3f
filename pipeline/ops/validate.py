"""`marketo-pipeline validate [FILE|-]`: what the service would do with each event, line by line.

The service's own decoder reads JSON lines (one event a line, as producers write them) and says, for each, the
key and kind it would be handled under, or the dead-letter reason and error it would get. Nothing is sent.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from pipeline.ingest.decode import decode_event
from pipeline.records import InvalidEvent, LeadChange, RawMessage, Source

SOURCE_TOPIC = "validate"


def verdicts(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """One verdict per non-blank line: `accepted` with its key and kind, or `dead_letter` with reason and error."""
    for number, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        decoded = decode_event(RawMessage(Source(SOURCE_TOPIC, 0, number), None, raw))
        if isinstance(decoded, InvalidEvent):
            yield {"line": number, "verdict": "dead_letter", "reason": decoded.reason.value, "error": decoded.error}
        else:
            kind = "lead" if isinstance(decoded, LeadChange) else "mobject"
            yield {
                "line": number,
                "verdict": "accepted",
                "event_id": decoded.event_id,
                "kind": kind,
                "key": decoded.key,
            }


def validate_file(name: str) -> int:
    """Verdicts for `name` (`-`: stdin) as JSON lines on stdout, a count on stderr; 1 when any would fail."""
    counts = {"accepted": 0, "dead_letter": 0}
    with Path(name).open("rb") if name != "-" else _stdin() as stream:
        for verdict in verdicts(stream):
            sys.stdout.write(orjson.dumps(verdict).decode() + "\n")
            counts[verdict["verdict"]] += 1
    sys.stderr.write(f"validate: {counts['accepted']} accepted, {counts['dead_letter']} would be dead-lettered\n")
    return 1 if counts["dead_letter"] else 0


def _stdin() -> Any:  # noqa: ANN401 - a binary stream that is not closed with the block
    return open(sys.stdin.fileno(), "rb", closefd=False)
