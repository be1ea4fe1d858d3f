"""Window merge by precedence key, and per-lead ordering. Pure: no I/O, time is passed in."""
