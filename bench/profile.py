"""A readable summary of py-spy's raw samples: where the service's time goes, by function."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def _frames(stack: str) -> list[str]:
    return [frame.strip() for frame in stack.split(";") if frame.strip()]


def summarize(raw: Path, *, rate: int, top: int = 40) -> str:
    """Inclusive and self shares of every function, busiest first (py-spy leaves out samples of a waiting loop)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = _frames(stack)
        if not frames or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    busy = max(total, 1)
    lines = [f"{total} samples at {rate}/s: {total / rate:.1f} s busy", "", f"{'inclusive':>9}  {'self':>6}  function"]
    lines += [f"{n / busy:9.1%}  {own[frame] / busy:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", f"{'self':>9}  function"]
    lines += [f"{n / busy:9.1%}  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines) + "\n"
