"""A monitor's alarm rules as Prometheus alerting rules over the `/metrics` drift gauges.

Teams that route pages through Prometheus get the same conditions driftd evaluates, on the series
driftd exports (`series.py` maps each alarm metric to its Prometheus name):

* metric rule  -> ``<series> <op> <fixed threshold>`` or, for a calibrated threshold,
  ``<series> <op> ignoring(level) <series>_threshold{level="critical"}``; ``min_samples`` becomes
  ``and on(monitor) driftd_window_rows >= N`` and ``max_p_value`` an ``and`` on the p-value series;
* composite rule -> ``(cond_1 present) + (cond_2 present) + ... >= k`` (all: k = n, any: k = 1),
  each term ``clamp_max(count(cond_i), 1) or vector(0)``;
* ``for_evaluations`` -> ``for: for_evaluations x evaluation interval``, ``keep_firing_for`` as is;
* labels ``severity`` (P1/P2/P3), ``rule``, ``monitor`` plus the rule's own; annotations
  ``summary`` and ``runbook`` with driftd's ``{placeholders}`` turned into Prometheus templates, and
  ``description`` saying in words what the rule checks.

Differences, stated rather than hidden: Prometheus has no cooldown (driftd's ``cooldown`` is
dropped; Alertmanager's ``repeat_interval`` is the nearest thing), and ``min_samples`` checks the
window's rows, where driftd checks each statistic's own sample size.

>>> from driftd.server.domain.monitor import AlarmRule, MetricCondition, Direction
>>> rule = AlarmRule("psi", MetricCondition('feature_psi{feature="age"}', Direction.ABOVE, fixed_threshold=0.25))
>>> condition(rule, "fraud", {})
'driftd_feature_psi{monitor="fraud",feature="age"} > 0.25'
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

from driftd.server.domain.monitor import AlarmRule, CompositeMode, Direction, Monitor, parse_selector
from driftd.server.observability.series import ALL_SERIES, THRESHOLD_SUFFIX, promql_selector

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def alert_name(rule_id: str) -> str:
    """Prometheus alert names must be metric-name shaped: `feature-drift` -> `DriftdFeatureDrift`."""
    return "Driftd" + "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", rule_id) if part)


def _number(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if x != int(x) or abs(x) >= 1e15 else str(int(x))


def _duration(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _required(rule: AlarmRule) -> int:
    """How many referenced conditions a composite rule needs."""
    comp = rule.composite
    return {CompositeMode.ALL: len(comp.rule_ids), CompositeMode.ANY: 1}.get(comp.mode, comp.k)


def condition(rule: AlarmRule, monitor_id: str, rules: dict[str, AlarmRule]) -> str:
    """The PromQL expression that returns a series exactly when the rule's condition holds.

    `rules` is the monitor's rules in order. As in the alarm engine, a composite rule sees the
    conditions of the rules *before* it; a reference to a later rule (or a cycle) counts as false.
    """
    order = {rid: i for i, rid in enumerate(rules)}
    memo: dict[str, str] = {}

    def build(r: AlarmRule) -> str:
        if r.rule_id not in memo:
            memo[r.rule_id] = _composite(r) if r.composite is not None else _metric_condition(r, monitor_id)
        return memo[r.rule_id]

    def _composite(r: AlarmRule) -> str:
        terms = []
        for ref in r.composite.rule_ids:
            if ref in rules and order[ref] < order.get(r.rule_id, len(rules)):
                terms.append(f"(clamp_max(count({build(rules[ref])}), 1) or vector(0))")
            else:
                terms.append("vector(0)")  # not yet evaluated when this rule is: false, as in the engine
        expr = f"({' + '.join(terms)}) >= {_required(r)}"
        if r.min_samples > 0:  # the result has no labels: match on none
            expr = f"({expr}) and on() ({promql_selector('row_count', (), monitor_id)} >= {r.min_samples})"
        return expr

    return build(rule)


def _metric_condition(rule: AlarmRule, monitor_id: str) -> str:
    cond = rule.metric
    metric, labels = parse_selector(cond.selector)
    series = ALL_SERIES[metric]
    base = promql_selector(metric, tuple(labels.items()), monitor_id)
    op = ">" if cond.direction == Direction.ABOVE else "<"
    if cond.calibrated_threshold is not None:
        threshold = promql_selector(metric, tuple(labels.items()), monitor_id, threshold_level=cond.calibrated_threshold.value)
        expr = f"{base} {op} ignoring(level) {threshold}"
    else:
        expr = f"{base} {op} {_number(cond.fixed_threshold * series.scale)}"
    if cond.max_p_value is not None:
        if f"{metric}_pvalue" in ALL_SERIES:
            expr = f"({expr}) and {promql_selector(f'{metric}_pvalue', tuple(labels.items()), monitor_id)} <= {_number(cond.max_p_value)}"
        else:  # the statistic has no p-value: the engine never finds the gate satisfied
            expr = f"({expr}) unless on() vector(1)"
    if rule.min_samples > 0:
        expr = f"({expr}) and on(monitor) {promql_selector('row_count', (), monitor_id)} >= {rule.min_samples}"
    return expr


def _escape_template(text: str) -> str:
    """Literal `{{` / `}}` in user text would be parsed as template actions: quote them."""
    return text.replace("{{", "\x00").replace("}}", '{{ "}}" }}').replace("\x00", '{{ "{{" }}')


def _template(text: str, rule: AlarmRule, monitor_id: str) -> str:
    """driftd's `{placeholder}` texts -> Prometheus alert templates."""
    series = ALL_SERIES[parse_selector(rule.metric.selector)[0]] if rule.metric is not None else None
    if series is None:
        threshold = str(_required(rule))
    elif rule.metric.calibrated_threshold is not None:
        threshold = _threshold_template(rule, monitor_id)
    else:
        threshold = _number(rule.metric.fixed_threshold)
    value = "{{ $value | humanize }}"
    if series is not None and series.scale == 0.001:
        # a milliseconds metric exported in seconds: show both as durations
        value = "{{ $value | humanizeDuration }}"
        if rule.metric.calibrated_threshold is None:
            threshold += "ms"
    values = {
        # the monitor is known here; composite alerts carry no series labels to template from
        "monitor": monitor_id, "value": value, "threshold": threshold,
        "baseline": "active", "rule": rule.rule_id, "severity": rule.severity.value, "state": "firing",
        "previous_state": "pending", "selector": rule.metric.selector if rule.metric else rule.rule_id,
        "direction": rule.metric.direction.value if rule.metric else "above",
    }
    if series is not None and series.label:
        values[series.label] = "{{ $labels." + series.label + " }}"
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), _escape_template(text))


def _threshold_template(rule: AlarmRule, monitor_id: str) -> str:
    """A template that looks the calibrated threshold up when the alert renders (Prometheus's
    `query` template function), so the text shows the number, not 'the threshold'."""
    metric, labels = parse_selector(rule.metric.selector)
    series = ALL_SERIES[metric]
    name = series.name + THRESHOLD_SUFFIX
    pairs = [("monitor", '\\"' + monitor_id + '\\"', None), *((k, '\\"' + v + '\\"', None) for k, v in series.const_labels)]
    if series.label:
        pairs.append((series.label, "%q", f"$labels.{series.label}"))
    pairs.append(("level", '\\"' + rule.metric.calibrated_threshold.value + '\\"', None))
    fmt = name + "{" + ",".join(f"{k}={v}" for k, v, _ in pairs) + "}"
    args = " ".join(a for _, _, a in pairs if a)
    return '{{ with printf "' + fmt + '" ' + args + ' | query }}{{ . | first | value | humanize }}{{ end }}'


def describe(rule: AlarmRule, monitor_id: str, interval: float) -> str:
    """What the rule checks, in words (the `description` annotation)."""
    if rule.composite is not None:
        what = (f"{_required(rule)} of the conditions of {', '.join(rule.composite.rule_ids)} hold "
                f"({rule.composite.mode.value.replace('_', '-')})")
    else:
        cond = rule.metric
        bound = (f"the baseline's calibrated {cond.calibrated_threshold.value} threshold" if cond.calibrated_threshold is not None
                 else _number(cond.fixed_threshold))
        what = f"{cond.selector} is {cond.direction.value} {bound}"
        if cond.max_p_value is not None:
            what += f" with p-value <= {_number(cond.max_p_value)}"
    extra = []
    if rule.min_samples > 0:
        extra.append(f"at least {rule.min_samples} rows in the window")
    if rule.for_evaluations > 0:
        extra.append(f"for {rule.for_evaluations} evaluations ({_duration(rule.for_evaluations * interval)})")
    if rule.keep_firing_for_seconds > 0:
        extra.append(f"keeps firing {_duration(rule.keep_firing_for_seconds)} after it clears")
    tail = "; ".join(extra)
    return f"driftd monitor {monitor_id}, rule {rule.rule_id}: {what}" + (f"; {tail}" if tail else "") + "."


def monitor_rule_group(monitor: Monitor) -> dict[str, Any]:
    """One Prometheus rule group with every rule of the monitor."""
    from driftd.server.domain.alarms import default_runbook, default_summary

    spec, mid = monitor.spec, monitor.monitor_id
    interval = spec.window.effective_evaluation_interval
    by_id = {r.rule_id: r for r in spec.rules}
    out = []
    for rule in spec.rules:
        # the rule's own labels never override the reserved ones routing depends on
        labels = {**dict(rule.labels), "severity": rule.severity.value, "rule": rule.rule_id, "monitor": mid}
        annotations = {"summary": _template(rule.summary or default_summary(rule), rule, mid),
                       "description": describe(rule, mid, interval)}
        runbook = _template(rule.runbook or default_runbook(rule), rule, mid)
        if runbook:
            annotations["runbook"] = runbook
        entry: dict[str, Any] = {"alert": alert_name(rule.rule_id), "expr": condition(rule, mid, by_id)}
        if rule.for_evaluations > 0:
            entry["for"] = _duration(rule.for_evaluations * interval)
        if rule.keep_firing_for_seconds > 0:
            entry["keep_firing_for"] = _duration(rule.keep_firing_for_seconds)
        entry["labels"] = labels
        entry["annotations"] = annotations
        out.append(entry)
    # No group `interval`: the gauges are step functions, and a group evaluated once per monitor
    # interval could start up to one interval late. Prometheus's global evaluation_interval is fine.
    return {"name": f"driftd.{mid}", "rules": out}


def rules_document(monitors: Iterable[Monitor]) -> dict[str, Any]:
    """A Prometheus rules file (`rule_files:` entry) for the given monitors."""
    return {"groups": [monitor_rule_group(m) for m in monitors if m.spec.rules]}
