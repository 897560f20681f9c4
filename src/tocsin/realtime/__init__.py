"""The WebSocket hub that streams incident events to browsers and tools."""
