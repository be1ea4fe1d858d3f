"""A readable summary of py-spy's raw samples: where the service's time goes, by function."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

_IDLE = ("select (selectors.py)", "_run_once (asyncio/base_events.py)")


def _frames(stack: str) -> list[str]:
    return [frame.strip() for frame in stack.split(";") if frame.strip()]


def summarize(raw: Path, *, top: int = 40) -> str:
    """Inclusive and self shares of every function, busiest first; waiting in the event loop's select is idle."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        if frames and frames[-1].startswith(_IDLE[0]):
            idle += count
            continue
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    busy = max(total - idle, 1)
    lines = [
        f"py-spy samples: {total}, idle in select: {idle} ({idle / max(total, 1):.0%}); shares below are of the busy "
        f"{busy} samples",
        "",
        f"{'inclusive':>9}  {'self':>6}  function",
    ]
    for frame, count in inclusive.most_common(top):
        lines.append(f"{count / busy:9.1%}  {own[frame] / busy:6.1%}  {frame}")
    lines += ["", f"{'self':>9}  function"]
    lines += [f"{count / busy:9.1%}  {frame}" for frame, count in own.most_common(top)]
    return "\n".join(lines) + "\n"
