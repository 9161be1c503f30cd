"""The JIT domain: requests, grants, their states and expiration actions. Plain Python, no I/O."""
