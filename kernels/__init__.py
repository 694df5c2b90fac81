"""driftd.kernels: histogram and MMD kernels (Triton + torch reference). Imports nothing else of driftd."""
