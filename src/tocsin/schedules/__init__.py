"""On-call schedules: rotations, layers, overrides; who is on call (pure computation)."""
