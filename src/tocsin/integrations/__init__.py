"""Integration records; adapters/ turns each payload format into a normalised alert."""
