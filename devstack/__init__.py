"""Local development stack helpers (simulators, runners)."""
