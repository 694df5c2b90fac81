"""Test-wide set-up.

TRITON_INTERPRET must be set before any Triton kernel is defined (i.e. before driftd.kernels is
imported anywhere), so the kernels run on CPU through Triton's interpreter.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("DRIFTD_LOG_LEVEL", "warning")
