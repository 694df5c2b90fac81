"""driftd Python client."""
