"""Simulator capacity: 300-lead syncMultipleLeads calls a second on one core, as a margin over Marketo's own rate.

Marketo allows 100 calls in 20 s, 5 a second. The simulator stands in for it in the saturation and latency
figures, so what matters is that it never becomes the bottleneck there: its capacity is stated as a multiple
of Marketo's rate, not as an absolute that only says how fast the machine is.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import time

import aiohttp

from bench.envelope import CREDENTIALS, sample_leads
from devkit.simulator import SimulatorProcess
from pipeline.marketo.soap.envelope import build_envelope, sync_multiple_leads_request
from pipeline.marketo.soap.namespace import CONTENT_TYPE

CLIENT_CONCURRENCY = 8
MARKETO_CALLS_PER_S = 100 / 20


def _pinned() -> bool:
    return shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) > 1


async def _drive(base: str, seconds: float) -> dict[str, float]:
    # 60 distinct batches: the store grows to 18,000 leads, then calls update them.
    bodies = [
        build_envelope(sync_multiple_leads_request(sample_leads(300, n * 300), dedup_enabled=True), CREDENTIALS)
        for n in range(60)
    ]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENT_CONCURRENCY)) as session:
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
    cores = os.sched_getaffinity(0)
    pinned = _pinned()
    simulator = SimulatorProcess(CREDENTIALS, core=min(cores) if pinned else None)
    if pinned:
        # The simulator has the first core to itself; this client takes the others.
        os.sched_setaffinity(0, cores - {min(cores)})
    try:
        asyncio.run(simulator.admin("stats"))  # answering: started
        figures = asyncio.run(_drive(simulator.base_url, seconds))
    finally:
        os.sched_setaffinity(0, cores)
        simulator.stop()
    margin = round(figures["calls_per_s"] / MARKETO_CALLS_PER_S, 1)
    return {**figures, "margin_over_marketo": margin, "simulator_cores": 1 if pinned else len(cores)}
