"""Generated driftd v1 protocol stubs (scripts/gen_protos.sh). Do not edit."""
