"""Simulator throughput: syncMultipleLeads calls of 300 leads per second, the simulator pinned to one core."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bench.envelope import CREDENTIALS, sample_leads
from pipeline.marketo.envelope import build_envelope, sync_multiple_leads_request
from pipeline.marketo.namespace import CONTENT_TYPE

CLIENT_CONCURRENCY = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pinned() -> bool:
    return shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) > 1


def _start(port: int) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).with_name("marketo-pipeline")),
        "simulate",
        "--port",
        str(port),
        "--user-id",
        CREDENTIALS.user_id,
        "--secret-key",
        CREDENTIALS.secret_key,
        "--log-level",
        "warning",
    ]
    if _pinned():
        command = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *command]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


async def _wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{base}/_sim/stats") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            await asyncio.sleep(0.1)
    msg = "the simulator did not start"
    raise RuntimeError(msg)


async def _drive(base: str, seconds: float) -> dict[str, float]:
    # 60 distinct batches: the store grows to 18,000 leads, then calls update them.
    bodies = [
        build_envelope(sync_multiple_leads_request(sample_leads(300, n * 300), dedup_enabled=True), CREDENTIALS)
        for n in range(60)
    ]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENT_CONCURRENCY)) as session:
        await _wait_ready(session, base)
        endpoint = f"{base}/soap/mktows/2_2"
        source = itertools.cycle(bodies)
        done = 0
        failed = 0
        stop_at = 0.0

        async def worker() -> None:
            nonlocal done, failed
            while time.monotonic() < stop_at:
                async with session.post(endpoint, data=next(source), headers={"Content-Type": CONTENT_TYPE}) as reply:
                    await reply.read()
                    if reply.status == 200:
                        done += 1
                    else:
                        failed += 1

        stop_at = time.monotonic() + 1.0  # warm-up
        await asyncio.gather(*(worker() for _ in range(CLIENT_CONCURRENCY)))
        done = failed = 0
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(worker() for _ in range(CLIENT_CONCURRENCY)))
        elapsed = time.monotonic() - started
    return {
        "calls_per_s": round(done / elapsed, 1),
        "leads_per_s": round(done * 300 / elapsed),
        "failed_calls": failed,
        "seconds": round(elapsed, 1),
    }


def measure(seconds: float = 10.0) -> dict[str, float]:
    """syncMultipleLeads of 300 leads against `simulate` (limits off, signatures checked)."""
    port = _free_port()
    process = _start(port)
    cores = os.sched_getaffinity(0)
    if _pinned():
        # The simulator has the first core to itself; this client takes the others.
        os.sched_setaffinity(0, cores - {min(cores)})
    try:
        figures = asyncio.run(_drive(f"http://127.0.0.1:{port}", seconds))
    finally:
        os.sched_setaffinity(0, cores)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return {**figures, "simulator_cores": 1 if _pinned() else len(cores)}
