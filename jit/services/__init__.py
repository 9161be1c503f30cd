"""Use cases: plain functions over the domain, given the adapters they need through small protocols."""
