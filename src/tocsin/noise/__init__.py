"""Noise control: silences, inhibition, maintenance windows and snooze, applied by the
ingest pipeline between routing and dedup."""
