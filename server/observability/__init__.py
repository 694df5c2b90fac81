"""Observability: drift gauges for Prometheus, generated alert rules and dashboards, Alertmanager forwarding."""
