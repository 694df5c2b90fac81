"""Test-wide set-up.

TRITON_INTERPRET must be set before any Triton kernel is defined (i.e. before driftd.kernels is
imported anywhere), so the kernels run on CPU through Triton's interpreter.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("DRIFTD_LOG_LEVEL", "warning")
# Servers built by tests do not freeze the heap (a collection per server start, and frozen
# cycles outlive the test); tests/server/test_heap.py turns it on where it is under test.
os.environ.setdefault("DRIFTD_GC_FREEZE", "false")
