"""Where the event loop's tasks wait: what a stall report needs."""

from __future__ import annotations

import asyncio
from typing import Final

_MAX_LINKS: Final = 12


def await_chains() -> list[str]:
    """Each task of the running loop as its chain of awaits (`function:line > ...`), sorted."""
    chains = []
    for task in asyncio.all_tasks():
        links: list[str] = []
        awaited: object = task.get_coro()
        while awaited is not None and len(links) < _MAX_LINKS:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                links.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        chains.append(" > ".join(links) or repr(task))
    return sorted(chains)
