"""Generated driftd v1 protocol stubs (scripts/gen_protos.py). Do not edit."""
