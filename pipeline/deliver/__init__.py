"""aiohttp worker pool, Marketo rate governor, backoff, and the batch split that pins a rejected record."""
