"""What Tocsin tells the people who run it: structured logs, request ids, traces."""
