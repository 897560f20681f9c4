"""Tocsin: on-call and incident alerting."""

__version__ = "0.1.0"
