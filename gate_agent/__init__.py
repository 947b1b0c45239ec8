"""The asyncio daemon on each gate: scanner → decide → journal → turnstile → display → sync."""
