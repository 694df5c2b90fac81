"""Alarm rules on scripted metric sequences: every option, with exact transitions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from driftd.server.domain.alarms import FIRING, INACTIVE, NO_DATA, PENDING, RESOLVED, AlarmEngine, InstanceState, MetricSample
from driftd.server.domain.monitor import (
    AlarmRule,
    CalibratedLevel,
    CompositeCondition,
    CompositeMode,
    Direction,
    MetricCondition,
    Severity,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
AGE = ("feature_psi", (("feature", "age"),))


def psi_rule(**kw) -> AlarmRule:
    cond = kw.pop("cond", MetricCondition('feature_psi{feature="age"}', Direction.ABOVE, fixed_threshold=0.25))
    return AlarmRule("psi", cond, severity=Severity.P2, **kw)


def run(engine: AlarmEngine, values, step_s: float = 60.0, samples: int = 1000, key=AGE):
    """Feed one value per evaluation (None = series missing); return [(eval index, prev, new)]."""
    out = []
    for i, v in enumerate(values):
        frame = {} if v is None else {key: MetricSample(v, samples=samples)}
        for t in engine.evaluate(frame, now=T0 + timedelta(seconds=step_s * i), row_count=samples):
            out.append((i, t.previous_state, t.state))
    return out


def test_fires_immediately_without_for_and_resolves():
    assert run(AlarmEngine("m", (psi_rule(),)), [0.1, 0.3, 0.3, 0.1]) == [(1, INACTIVE, FIRING), (3, FIRING, RESOLVED)]


def test_for_needs_consecutive_evaluations_and_a_dip_resets():
    rule = psi_rule(for_evaluations=2)
    assert run(AlarmEngine("m", (rule,)), [0.3, 0.3, 0.1, 0.3, 0.3, 0.3]) == [
        (0, INACTIVE, PENDING), (2, PENDING, INACTIVE), (3, INACTIVE, PENDING), (5, PENDING, FIRING)]


def test_direction_below():
    rule = AlarmRule("acc", MetricCondition("accuracy", Direction.BELOW, fixed_threshold=0.9))
    engine = AlarmEngine("m", (rule,))
    assert run(engine, [0.95, 0.85, 0.92], key=("accuracy", ())) == [(1, INACTIVE, FIRING), (2, FIRING, RESOLVED)]


def test_min_samples_gives_no_data_then_recovers():
    rule = psi_rule(min_samples=500)
    engine = AlarmEngine("m", (rule,))
    out = []
    for i, (v, n) in enumerate([(0.9, 100), (0.9, 600), (0.1, 600)]):
        out += [(i, t.previous_state, t.state) for t in engine.evaluate({AGE: MetricSample(v, samples=n)}, now=T0 + timedelta(minutes=i), row_count=n)]
    assert out == [(0, INACTIVE, NO_DATA), (1, NO_DATA, FIRING), (2, FIRING, RESOLVED)]


def test_missing_series_is_no_data():
    assert run(AlarmEngine("m", (psi_rule(),)), [0.3, None, 0.1]) == [(0, INACTIVE, FIRING), (1, FIRING, NO_DATA), (2, NO_DATA, INACTIVE)]


def test_keep_firing_for_holds_through_short_dips():
    rule = psi_rule(keep_firing_for_seconds=150)
    # true at t=0, false at 60, 120 (< 150 s since last true), 180 (>= 150) -> resolved at index 3
    assert run(AlarmEngine("m", (rule,)), [0.3, 0.1, 0.1, 0.1]) == [(0, INACTIVE, FIRING), (3, FIRING, RESOLVED)]


def test_cooldown_blocks_refiring():
    rule = psi_rule(cooldown_seconds=150)
    # fire at 0, resolve at 60; true at 120 (60 s after resolve: blocked), 180 (blocked), 240 (180 s: fires)
    assert run(AlarmEngine("m", (rule,)), [0.3, 0.1, 0.3, 0.3, 0.3]) == [
        (0, INACTIVE, FIRING), (1, FIRING, RESOLVED), (4, RESOLVED, FIRING)]


def test_calibrated_threshold_and_pvalue_gate():
    cond = MetricCondition('embedding_mmd2{block="text"}', Direction.ABOVE, calibrated_threshold=CalibratedLevel.CRITICAL, max_p_value=0.01)
    engine = AlarmEngine("m", (AlarmRule("mmd", cond),))
    key = ("embedding_mmd2", (("block", "text"),))
    out = []
    for i, (v, p) in enumerate([(0.5, 0.2), (0.5, 0.005), (0.01, 0.005)]):
        frame = {key: MetricSample(v, p_value=p, samples=1000, warning=0.02, critical=0.05)}
        out += [(i, t.state, t.threshold) for t in engine.evaluate(frame, now=T0 + timedelta(minutes=i), row_count=1000)]
    assert out == [(1, FIRING, 0.05), (2, RESOLVED, 0.05)]


def test_wildcard_selector_makes_one_instance_per_series():
    rule = AlarmRule("psi", MetricCondition("feature_psi", Direction.ABOVE, fixed_threshold=0.25))
    engine = AlarmEngine("m", (rule,))
    frame = {("feature_psi", (("feature", f),)): MetricSample(v, samples=10) for f, v in [("a", 0.3), ("b", 0.1), ("c", 0.5)]}
    fired = sorted(t.alarm_id for t in engine.evaluate(frame, now=T0, row_count=10))
    assert fired == ["psi.a", "psi.c"]


@pytest.mark.parametrize("mode,k,truths,expected", [
    (CompositeMode.ALL, 0, (True, True), True), (CompositeMode.ALL, 0, (True, False), False),
    (CompositeMode.ANY, 0, (False, True), True), (CompositeMode.ANY, 0, (False, False), False),
    (CompositeMode.K_OF_N, 2, (True, False, True), True), (CompositeMode.K_OF_N, 2, (True, False, False), False),
])
def test_composite_modes(mode, k, truths, expected):
    rules = tuple(AlarmRule(f"r{i}", MetricCondition(f'feature_psi{{feature="f{i}"}}', Direction.ABOVE, fixed_threshold=0.5))
                  for i in range(len(truths)))
    comp = AlarmRule("p1", composite=CompositeCondition(mode, tuple(r.rule_id for r in rules), k), severity=Severity.P1)
    engine = AlarmEngine("m", (*rules, comp))
    frame = {("feature_psi", (("feature", f"f{i}"),)): MetricSample(1.0 if t else 0.0, samples=10) for i, t in enumerate(truths)}
    events = [t for t in engine.evaluate(frame, now=T0, row_count=10) if t.rule_id == "p1"]
    assert ([e.state for e in events] == [FIRING]) == expected
    assert all(e.severity == Severity.P1 for e in events)


def test_summary_and_runbook_are_filled_in():
    rule = psi_rule(summary="PSI of {feature} is {value} > {threshold} vs {baseline}", runbook="Roll back {monitor} if {feature} keeps drifting")
    engine = AlarmEngine("fraud", (rule,), baseline="monitors/fraud/baselines/b7")
    (t,) = engine.evaluate({AGE: MetricSample(0.4123, samples=10)}, now=T0, row_count=10)
    assert t.summary == "PSI of age is 0.4123 > 0.25 vs monitors/fraud/baselines/b7"
    assert t.runbook == "Roll back fraud if age keeps drifting"
    assert t.payload(snapshot="s")["alarm"] == "monitors/fraud/alarms/psi.age"


def test_state_survives_serialisation():
    rule = psi_rule(for_evaluations=2)
    engine = AlarmEngine("m", (rule,))
    run(engine, [0.3, 0.3])
    restored = AlarmEngine("m", (rule,), states={k: InstanceState.from_dict(v.to_dict()) for k, v in engine.states.items()})
    assert restored.states == engine.states
    (t,) = restored.evaluate({AGE: MetricSample(0.3, samples=10)}, now=T0 + timedelta(minutes=2), row_count=10)
    assert (t.previous_state, t.state) == (PENDING, FIRING)
