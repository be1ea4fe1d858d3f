"""Shared test fixtures: where the Marketo material lives."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "marketo"


@pytest.fixture
def fixture_bytes() -> object:
    def read(name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    return read
