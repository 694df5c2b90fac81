"""MonitorService end to end over real gRPC on loopback, plus health, reflection and pending services."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from driftd.v1 import monitor_pb2 as m, monitor_pb2_grpc

from support import rich_details, start_served, stop_served, violated_fields


def good_monitor(**kw) -> m.Monitor:
    mon = m.Monitor(model_id="fraud", model_version="3", lane="prod", description="fraud model", labels={"team": "risk"})
    mon.schema.numeric_features.add(name="amount", valid_min=0.0, valid_max=1e6)
    mon.schema.numeric_features.add(name="age")
    mon.schema.categorical_features.add(name="country", categories=["de", "fr", "us"])
    mon.schema.embedding_blocks.add(name="text", dim=8)
    mon.schema.score_outputs.add(name="p_fraud", kind=m.SCORE_KIND_PROBABILITY)
    mon.window.pane_duration.seconds = 30
    mon.window.pane_count = 4
    r = mon.rules.add(rule_id="amount-psi", severity=m.SEVERITY_P2, for_evaluations=2, min_samples=100, summary="PSI of amount is {value}")
    r.metric.selector = 'feature_psi{feature="amount"}'
    r.metric.direction = m.DIRECTION_ABOVE
    r.metric.fixed_threshold = 0.25
    r.cooldown.seconds = 300
    r2 = mon.rules.add(rule_id="drift-and-quality", severity=m.SEVERITY_P1)
    r2.composite.mode = m.COMPOSITE_MODE_ALL
    r2.composite.rule_ids.append("amount-psi")
    for k, v in kw.items():
        setattr(mon, k, v)
    return mon


async def create(stub, monitor_id="fraud-v3", monitor=None):
    return (await stub.CreateMonitor(m.CreateMonitorRequest(monitor_id=monitor_id, monitor=monitor or good_monitor()))).monitor


async def test_health_serving_for_server_and_each_service(served):
    stub = health_pb2_grpc.HealthStub(served.channel)
    for service in ["", "driftd.v1.MonitorService", "driftd.v1.IngestService", "driftd.v1.AlarmService"]:
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_all_five_services(served):
    stub = reflection_pb2_grpc.ServerReflectionStub(served.channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = []
    async for resp in stub.ServerReflectionInfo(requests()):
        names = [s.name for s in resp.list_services_response.service]
    for service in ["MonitorService", "BaselineService", "IngestService", "SnapshotService", "AlarmService"]:
        assert f"driftd.v1.{service}" in names
    assert "grpc.health.v1.Health" in names


async def test_crud_round_trip(served):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    created = await create(stub)
    assert created.name == "monitors/fraud-v3"
    assert created.etag and created.create_time.seconds > 0
    assert [f.name for f in created.schema.numeric_features] == ["amount", "age"]
    assert created.schema.numeric_features[0].valid_max == 1e6
    assert not created.schema.numeric_features[1].HasField("valid_min")
    assert created.rules[0].metric.fixed_threshold == 0.25 and created.rules[0].cooldown.seconds == 300
    assert created.rules[1].composite.rule_ids == ["amount-psi"]
    assert created.statistics.numeric_bins == 10  # documented default filled in

    got = (await stub.GetMonitor(m.GetMonitorRequest(name="monitors/fraud-v3"))).monitor
    assert got == created

    update = m.Monitor(name="monitors/fraud-v3", description="new text", lane="canary")
    updated = (await stub.UpdateMonitor(m.UpdateMonitorRequest(
        monitor=update, update_mask=field_mask_pb2.FieldMask(paths=["description"])))).monitor
    assert updated.description == "new text"
    assert updated.lane == "prod"  # not in the mask: unchanged
    assert updated.etag != created.etag
    assert list(updated.rules) == list(created.rules)

    await stub.DeleteMonitor(m.DeleteMonitorRequest(name="monitors/fraud-v3"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetMonitor(m.GetMonitorRequest(name="monitors/fraud-v3"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert rich_details(err.value)["ErrorInfo"].reason == "NOT_FOUND"


async def test_list_is_paginated_and_complete(served):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    ids = [f"m-{i:02d}" for i in range(7)]
    for i in reversed(ids):
        await create(stub, i)
    seen, token, pages = [], "", 0
    while True:
        resp = await stub.ListMonitors(m.ListMonitorsRequest(page_size=3, page_token=token))
        assert resp.total_size == 7
        seen += [x.name.split("/")[1] for x in resp.monitors]
        pages += 1
        token = resp.next_page_token
        if not token:
            break
    assert seen == ids and pages == 3


async def test_duplicate_id_already_exists(served):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    await create(stub)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(stub)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def _mutate(fn) -> m.Monitor:
    mon = good_monitor()
    fn(mon)
    return mon


BAD_MONITORS = {
    "duplicate column": (_mutate(lambda x: x.schema.categorical_features.add(name="amount")), "monitor.schema.categorical[1].name"),
    "empty schema": (_mutate(lambda x: x.ClearField("schema")), "monitor.schema"),
    "bad range": (_mutate(lambda x: setattr(x.schema.numeric_features[0], "valid_min", 2e6)), "monitor.schema.numeric[0].valid_max"),
    "nan range": (_mutate(lambda x: setattr(x.schema.numeric_features[1], "valid_min", float("nan"))), "monitor.schema.numeric[1].valid_min"),
    "bad column name": (_mutate(lambda x: setattr(x.schema.numeric_features[1], "name", "has space")), "monitor.schema.numeric[1].name"),
    "zero dim": (_mutate(lambda x: setattr(x.schema.embedding_blocks[0], "dim", 0)), "monitor.schema.embeddings[0].dim"),
    "unknown score kind": (_mutate(lambda x: setattr(x.schema.score_outputs[0], "kind", 42)), "monitor.schema.score_outputs[0].kind"),
    "unknown severity": (_mutate(lambda x: setattr(x.rules[0], "severity", 9)), "monitor.rules[0].severity"),
    "unspecified direction": (_mutate(lambda x: setattr(x.rules[0].metric, "direction", 0)), "monitor.rules[0].metric.direction"),
    "unknown statistic": (_mutate(lambda x: x.statistics.enabled.append(77)), "monitor.statistics.enabled[0]"),
    "unknown metric": (_mutate(lambda x: setattr(x.rules[0].metric, "selector", "feature_bogus")), "monitor.rules[0].metric.selector"),
    "selector with a foreign label": (_mutate(lambda x: setattr(x.rules[0].metric, "selector", 'feature_psi{block="x"}')), "monitor.rules[0].metric.selector"),
    "malformed selector": (_mutate(lambda x: setattr(x.rules[0].metric, "selector", 'feature_psi{feature=age}')), "monitor.rules[0].metric.selector"),
    "composite unknown ref": (_mutate(lambda x: x.rules[1].composite.rule_ids.append("nope")), "monitor.rules[1].composite.rule_ids[1]"),
    "k out of range": (_mutate(lambda x: (setattr(x.rules[1].composite, "mode", m.COMPOSITE_MODE_K_OF_N), setattr(x.rules[1].composite, "k", 5))), "monitor.rules[1].composite.k"),
    "duplicate rule id": (_mutate(lambda x: setattr(x.rules[1], "rule_id", "amount-psi")), "monitor.rules[1].rule_id"),
    "pane count": (_mutate(lambda x: setattr(x.window, "pane_count", 100000)), "monitor.window.pane_count"),
    "bins": (_mutate(lambda x: setattr(x.statistics, "numeric_bins", 1)), "monitor.statistics.numeric_bins"),
    "negative for": (_mutate(lambda x: setattr(x.rules[0], "for_evaluations", -1)), "monitor.rules[0].for_evaluations"),
}


@pytest.mark.parametrize("case", list(BAD_MONITORS))
async def test_bad_monitor_invalid_argument_names_field(served, case):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    monitor, field = BAD_MONITORS[case]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(stub, monitor=monitor)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violated_fields(err.value), (field, violated_fields(err.value))
    assert field in err.value.details()
    # nothing was created
    listed = await stub.ListMonitors(m.ListMonitorsRequest())
    assert listed.total_size == 0


@pytest.mark.parametrize("name,field", [("fraud", "name"), ("monitors/", "name"), ("monitors/a/b", "name"), ("monitors/UPPER", "name")])
async def test_bad_names(served, name, field):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetMonitor(m.GetMonitorRequest(name=name))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(err.value) == [field]


async def test_bad_monitor_id_and_unknown_update_path_and_unknown_monitor(served):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(stub, monitor_id="-bad")
    assert violated_fields(err.value) == ["monitor_id"]
    await create(stub)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateMonitor(m.UpdateMonitorRequest(monitor=good_monitor(name="monitors/fraud-v3"),
                                                        update_mask=field_mask_pb2.FieldMask(paths=["create_time"])))
    assert violated_fields(err.value) == ["update_mask.paths[0]"]
    for call, req in [(stub.GetMonitor, m.GetMonitorRequest(name="monitors/ghost")),
                      (stub.DeleteMonitor, m.DeleteMonitorRequest(name="monitors/ghost")),
                      (stub.UpdateMonitor, m.UpdateMonitorRequest(monitor=good_monitor(name="monitors/ghost")))]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(req)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListMonitors(m.ListMonitorsRequest(page_token="%%%"))
    assert violated_fields(err.value) == ["page_token"]


async def test_stale_etag_is_refused(served):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    created = await create(stub)
    await stub.UpdateMonitor(m.UpdateMonitorRequest(monitor=m.Monitor(name=created.name, description="a", etag=created.etag),
                                                    update_mask=field_mask_pb2.FieldMask(paths=["description"])))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateMonitor(m.UpdateMonitorRequest(monitor=m.Monitor(name=created.name, description="b", etag=created.etag),
                                                        update_mask=field_mask_pb2.FieldMask(paths=["description"])))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rich_details(err.value)["ErrorInfo"].reason == "ETAG_MISMATCH"


async def test_monitors_survive_restart(tmp_path):
    s = await start_served(tmp_path / "data")
    stub = monitor_pb2_grpc.MonitorServiceStub(s.channel)
    created = await create(stub)
    await stop_served(s)
    s2 = await start_served(tmp_path / "data")
    try:
        got = (await monitor_pb2_grpc.MonitorServiceStub(s2.channel).GetMonitor(m.GetMonitorRequest(name=created.name))).monitor
        assert got == created
    finally:
        await stop_served(s2)


async def test_bearer_token_auth(tmp_path):
    s = await start_served(tmp_path / "data", auth_tokens=["s3cret"])
    try:
        stub = monitor_pb2_grpc.MonitorServiceStub(s.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListMonitors(m.ListMonitorsRequest())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListMonitors(m.ListMonitorsRequest(), metadata=[("authorization", "Bearer wrong")])
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        ok = await stub.ListMonitors(m.ListMonitorsRequest(), metadata=[("authorization", "Bearer s3cret")])
        assert ok.total_size == 0
        # health stays reachable for load balancers
        health = await health_pb2_grpc.HealthStub(s.channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await stop_served(s)


async def test_default_rule_pack_when_no_rules_given(served):
    stub = monitor_pb2_grpc.MonitorServiceStub(served.channel)
    mon = good_monitor()
    del mon.rules[:]
    created = await create(stub, "plain", mon)
    ids = [r.rule_id for r in created.rules]
    assert {"feature-drift", "feature-drift-retrain", "embedding-drift-text", "prediction-drift", "error-rate",
            "concept-drift", "drift-and-quality-drop"} <= set(ids)
    retrain = next(r for r in created.rules if r.rule_id == "feature-drift-retrain")
    assert retrain.metric.fixed_threshold == 0.25 and retrain.for_evaluations == 2 and retrain.severity == m.SEVERITY_P2
    p1 = next(r for r in created.rules if r.rule_id == "drift-and-quality-drop")
    assert p1.severity == m.SEVERITY_P1 and p1.composite.mode == m.COMPOSITE_MODE_ALL
    explicit = await create(stub, "explicit")
    assert [r.rule_id for r in explicit.rules] == ["amount-psi", "drift-and-quality"]
