from __future__ import annotations

from collections import Counter

from pipeline.ingest.decode import decode_event
from pipeline.ops.synthetic import SyntheticLoad
from pipeline.records import InvalidEvent, LeadChange, MObjectChange, RawMessage, Source


def test_the_load_has_the_shares_asked_for_and_keys_by_precedence_key() -> None:
    load = SyntheticLoad(seed=3, duplicates=0.2, invalid=0.01, mobjects=0.05, cookies=0.01)
    kinds: Counter[str] = Counter()
    for n, event in enumerate(load.events(20_000)):
        kinds[event.kind] += 1
        decoded = decode_event(RawMessage(Source("t", 0, n), event.key, event.value))
        if event.kind == "invalid":
            assert isinstance(decoded, InvalidEvent)
        else:
            assert isinstance(decoded, LeadChange | MObjectChange), decoded
            assert decoded.key.encode() == event.key
    assert 150 < kinds["invalid"] < 250
    assert 800 < kinds["mobject"] < 1200
    assert 150 < kinds["cookie"] < 250
    assert 3000 < kinds["duplicate"] < 4500


def test_the_same_seed_gives_the_same_events() -> None:
    first = [e.value for e in SyntheticLoad(seed=9, duplicates=0.2, invalid=0.01, mobjects=0.05).events(200)]
    second = [e.value for e in SyntheticLoad(seed=9, duplicates=0.2, invalid=0.01, mobjects=0.05).events(200)]
    assert first == second
