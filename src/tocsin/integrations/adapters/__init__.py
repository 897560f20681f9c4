"""Adapters: each turns one payload format into Tocsin's normalised alerts."""
