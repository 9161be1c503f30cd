"""The HTTP, queue and timer entry points (Functions blueprints) and what they need to speak HTTP."""
