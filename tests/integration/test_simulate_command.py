"""`marketo-pipeline simulate` as a user starts it: a process, a port, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devkit.kafka import free_port

pytestmark = pytest.mark.integration

EXECUTABLE = Path(sys.executable).with_name("marketo-pipeline")


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        data: dict[str, object] = json.load(response)
        return data


def test_the_simulate_command_serves_until_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [str(EXECUTABLE), "simulate", "--port", str(port), "--marketo-limits", "--lead-fields", "FirstName"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        config: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                config = _get(f"http://127.0.0.1:{port}/_sim/config")
                break
            except OSError:
                time.sleep(0.1)
        assert config["calls_per_20s"] == 100
        assert config["max_concurrency"] == 10
        assert config["lead_fields"] == ["FirstName"]
        assert _get(f"http://127.0.0.1:{port}/_sim/stats")["leads"] == 0
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "simulator_stopped" in stdout
    assert f"http://127.0.0.1:{port}/soap/mktows/2_2" in stderr
