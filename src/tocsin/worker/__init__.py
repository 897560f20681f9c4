"""The loop that claims due rows of any kind, with leases, retries and backoff."""
