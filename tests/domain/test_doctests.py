"""Run the runnable examples in the domain modules' docstrings."""

import doctest
import importlib

import pytest

MODULES = ["baseline", "batch", "binning", "concept_drift", "engine", "engine_state", "kernel_bridge", "labels", "latency_sketch",
           "moments", "pane", "reservoir", "snapshot", "stats_categorical", "stats_numeric", "thresholds", "window"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"driftd.server.domain.{name}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
