"""`marketo-pipeline demo`, what `make run` starts, as a user runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from devkit.kafka import Topics, free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("api", ["soap", "rest"])
async def test_demo_answers_every_event_prints_a_summary_and_stops_on_ctrl_c(
    kafka_bootstrap: str, tmp_path: Path, api: str
) -> None:
    names = Topics.unique()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")},
        "PIPELINE_KAFKA__INPUT_TOPIC": names.input,
        "PIPELINE_KAFKA__RESULTS_TOPIC": names.results,
        "PIPELINE_KAFKA__DLQ_TOPIC": names.dlq,
        "PIPELINE_KAFKA__GROUP_ID": names.group,
        "PIPELINE_HTTP__PORT": "0",
        "COLUMNS": "200",
    }
    executable = Path(sys.executable).with_name("marketo-pipeline")
    command = [
        str(executable),
        "demo",
        "--count",
        "2000",
        "--bootstrap",
        kafka_bootstrap,
        "--sim-port",
        str(free_port()),
        "--api",
        api,
        "--log-file",
        str(tmp_path / "service.log"),
    ]
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err
        )
        try:
            for _ in range(600):
                if "Ctrl-C stops" in stderr.read_text(errors="replace"):
                    break
                await asyncio.sleep(0.1)
            process.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(process.wait(), timeout=60)
        finally:
            if process.returncode is None:
                process.kill()
    text = stderr.read_text(errors="replace")
    assert code == 0, text
    assert "2000/2000" in text
    assert f"demo over Marketo's {api.upper()} API" in text
    assert f"leads per {'syncLeads' if api == 'rest' else 'syncMultipleLeads'} call" in text
    assert "limit faults (20023, 20024, 606, 615)" in text
    assert "results CREATED" in text
    assert "stopped." in text
    assert f"the service's logs go to {tmp_path / 'service.log'}" in text
    assert not [line for line in text.splitlines() if line.startswith("{")]  # no JSON over the progress and summary
    logged = [orjson.loads(line) for line in (tmp_path / "service.log").read_text().splitlines()]
    assert any(entry["event"] == "service_started" for entry in logged)
    assert not [e for e in logged if e["level"] == "error" and "Coordinator" in e["event"]]
