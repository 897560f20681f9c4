"""The audit log: who changed which configuration, when, through which credential."""
