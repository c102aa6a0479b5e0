"""The capacity model: queueing formulas against their closed forms, and plans that meet their goals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ragship.errors import InvalidRequestError
from ragship.planning.capacity import Capacity, Load, ServiceProfile, plan, update_capacity_file

pytestmark = pytest.mark.unit


def test_one_server_waits_with_probability_rho_and_mm1_mean_wait() -> None:
    profile = ServiceProfile(mean_ms=20, p95_ms=40, max_rps=50)
    assert profile.servers == 1
    assert profile.waiting_chance(25) == pytest.approx(0.5)
    # M/M/1: Wq = rho / (mu - lambda)
    assert profile.mean_wait_ms(25) == pytest.approx(1000 * 0.5 / 25)


def test_two_servers_match_the_erlang_c_closed_form() -> None:
    profile = ServiceProfile(mean_ms=20, p95_ms=30, max_rps=100)
    assert profile.servers == 2
    rho = 50 / 100
    assert profile.waiting_chance(50) == pytest.approx(2 * rho**2 / (1 + rho))


def test_p95_grows_with_load_and_is_unbounded_at_saturation() -> None:
    profile = ServiceProfile(mean_ms=25, p95_ms=45, max_rps=40)
    light, heavy = profile.predicted_p95_ms(1), profile.predicted_p95_ms(35)
    assert light == pytest.approx(45, abs=1)  # almost never waits: the lone request's p95
    assert heavy > light * 3
    assert math.isinf(profile.predicted_p95_ms(40))


CAPACITY = Capacity(
    api=ServiceProfile(mean_ms=25, p95_ms=45, max_rps=40), embedder_queries_per_s=240, worker_docs_per_s=4
)


@pytest.mark.parametrize("peak_qps", [5, 50, 400])
def test_plan_meets_the_goal_with_the_fewest_replicas(peak_qps: float) -> None:
    load = Load(peak_qps=peak_qps, p95_ms=250)
    planned = plan(CAPACITY, load, utilisation=0.7)
    peak = planned.api.max_replicas - 1
    assert planned.api.predicted_p95_ms is not None and planned.api.predicted_p95_ms <= 250
    assert peak_qps / peak <= 0.7 * 40
    if peak > 1:  # one replica fewer would either exceed the utilisation target or the latency goal
        fewer = peak_qps / (peak - 1)
        assert fewer > 0.7 * 40 or CAPACITY.api.predicted_p95_ms(fewer) > 250


def test_lower_utilisation_costs_replicas_and_buys_latency() -> None:
    load = Load(peak_qps=200, p95_ms=500)
    cheap, fast = plan(CAPACITY, load, utilisation=0.9), plan(CAPACITY, load, utilisation=0.5)
    assert fast.api.max_replicas > cheap.api.max_replicas
    assert fast.api.predicted_p95_ms is not None and cheap.api.predicted_p95_ms is not None
    assert fast.api.predicted_p95_ms < cheap.api.predicted_p95_ms
    assert (fast.api.target_cpu_percent, cheap.api.target_cpu_percent) == (50, 90)


def test_a_goal_below_the_lone_request_latency_is_refused_with_the_fix() -> None:
    with pytest.raises(InvalidRequestError, match="more replicas cannot help"):
        plan(CAPACITY, Load(peak_qps=10, p95_ms=40))


def test_workers_are_sized_by_the_daily_volume_and_the_ingest_window() -> None:
    planned = plan(CAPACITY, Load(peak_qps=5, p95_ms=250, docs_per_day=144_000, ingest_hours=2, docs_per_job=10))
    assert planned.worker is not None
    assert planned.worker.min_replicas == 0
    assert planned.worker.max_replicas == math.ceil(144_000 / 7200 / 4)  # 20 docs/s over 4 docs/s per worker
    assert planned.worker.list_length == 24  # a minute of one worker's jobs


def test_capacity_file_round_trips_and_benchmarks_merge_their_keys(tmp_path: Path) -> None:
    path = tmp_path / "capacity.json"
    update_capacity_file(path, api={"mean_ms": 25, "p95_ms": 45, "max_rps": 40}, hardware="2 cores")
    update_capacity_file(path, worker_docs_per_s=4.0)
    loaded = Capacity.load(path)
    assert loaded.api == CAPACITY.api and loaded.worker_docs_per_s == 4.0 and loaded.hardware == "2 cores"


def test_missing_or_broken_capacity_file_names_the_benchmark_to_run(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="make bench-serving"):
        Capacity.load(tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"api": {"mean_ms": 25}}))
    with pytest.raises(InvalidRequestError, match=r"broken\.json.*max_rps"):
        Capacity.load(broken)


def test_plan_command_writes_a_values_file_with_the_planned_scaling(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from ragship.cli import app

    capacity = tmp_path / "capacity.json"
    capacity.write_text(json.dumps({**CAPACITY.to_dict(), "hardware": "test"}))
    values = tmp_path / "plan.yaml"
    args = ["plan", "--peak-qps", "100", "--p95-ms", "300", "--docs", "1000", "--docs-per-day", "20000"]
    result = CliRunner().invoke(app, [*args, "--capacity", str(capacity), "--values", str(values), "--gpu"])
    assert result.exit_code == 0, result.output
    chart = yaml.safe_load(values.read_text())
    planned = plan(CAPACITY, Load(peak_qps=100, p95_ms=300, docs=1000, docs_per_day=20000))
    assert chart["api"]["hpa"]["maxReplicas"] == planned.api.max_replicas
    assert chart["api"]["env"]["RAGSHIP_SERVING__MAX_CONCURRENCY"] == str(planned.api.max_concurrency)
    assert chart["embedder"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert chart["generator"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert chart["worker"]["keda"]["maxReplicaCount"] == planned.worker.max_replicas  # type: ignore[union-attr]
    assert "5,000 chunks" in values.read_text()  # Elasticsearch sizing, as comments
    assert chart["alerts"]["latency"]["p95Seconds"] == 0.3  # the goal is the p95 alert's threshold


def test_plan_command_without_a_capacity_file_says_which_benchmark_to_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ragship.cli import app

    result = CliRunner().invoke(app, ["plan", "--peak-qps", "1", "--p95-ms", "300", "--capacity", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "make bench-serving" in str(result.exception or "") + result.output


def test_a_first_plan_needs_no_benchmark_and_says_it_used_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ragship.cli import app
    from ragship.planning.capacity import REFERENCE_CAPACITY_FILE
    from ragship.settings import get_settings

    monkeypatch.setenv("RAGSHIP_HOME", str(tmp_path))  # a home with no measured capacity file
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["plan", "--peak-qps", "20", "--p95-ms", "300", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "not your hardware" in json.loads(result.stdout)["capacity"]["hardware"]
    assert "recorded 2-core CPU reference" in result.stderr and "make bench-serving" in result.stderr
    reference = Capacity.load(REFERENCE_CAPACITY_FILE)
    assert json.loads(result.stdout)["plan"] == plan(reference, Load(peak_qps=20, p95_ms=300)).to_dict()
