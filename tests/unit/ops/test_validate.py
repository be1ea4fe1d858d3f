"""`validate`: the service's own decoder over JSON lines, a verdict per line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.ops.validate import validate_file, verdicts


def test_each_line_gets_the_verdict_the_service_would_give() -> None:
    lines = [
        b'{"event_id":"e1","lead":{"Id":7,"Email":"a@x.com"}}\n',
        b"\n",
        b'{"event_id":"e2","kind":"mobject","mobject":{"type":"Opportunity","externalKey":{"name":"X","value":"1"}}}',
        b"{not json",
        b'{"event_id":"e4","lead":{"Email":["a@x.com"]}}\r\n',
    ]
    found = list(verdicts(lines))
    assert [v["line"] for v in found] == [1, 3, 4, 5]  # blank lines are skipped, numbers kept
    assert found[0] == {"line": 1, "verdict": "accepted", "event_id": "e1", "kind": "lead", "key": "id:7"}
    assert (found[1]["verdict"], found[1]["kind"]) == ("accepted", "mobject")
    assert (found[2]["verdict"], found[2]["reason"]) == ("dead_letter", "invalid_json")
    assert (found[3]["verdict"], found[3]["reason"]) == ("dead_letter", "invalid_event")
    assert "lead.Email" in found[3]["error"]


def test_the_command_prints_json_lines_and_fails_when_any_event_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(b'{"event_id":"e1","lead":{"Email":"a@x.com"}}\n')
    assert validate_file(str(good)) == 0
    out = capsys.readouterr()
    assert orjson.loads(out.out.splitlines()[0])["key"] == "email:a@x.com"
    assert "1 accepted, 0 would be dead-lettered" in out.err
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"event_id":"e1"}\n')
    assert validate_file(str(bad)) == 1
