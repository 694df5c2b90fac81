"""driftd service: domain, store, transport and the assembly point (app.py)."""
