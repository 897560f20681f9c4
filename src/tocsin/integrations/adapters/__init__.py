"""Adapters: each turns one payload format into Tocsin's normalised alerts and signals.

`adapter_for(type)` gives the adapter for an integration type. A new format is a module
with a class following `base.Adapter`, listed in `registry.py` (or passed to `register`).
"""

from tocsin.integrations.adapters.registry import adapter_for, register

__all__ = ["adapter_for", "register"]
