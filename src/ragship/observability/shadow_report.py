"""What the shadow runs in MLflow say: one summary per champion and challenger pair (``ragship shadow report``)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from ragship.observability.shadow import (
    ANSWER_F1,
    CHALLENGER_HASH_TAG,
    CHALLENGER_LATENCY,
    CHALLENGER_TAG,
    CHAMPION_HASH_TAG,
    CHAMPION_LATENCY,
    CHAMPION_TAG,
    KIND,
    OVERLAP,
)
from ragship.settings import Settings, get_settings
from ragship.tracking.runs import KIND_TAG, init_mlflow


@dataclass
class ShadowSummary:
    """The live comparison of a challenger with the champion, over every shadowed question logged."""

    champion: str
    champion_hash: str
    challenger: str
    challenger_hash: str
    runs: int
    questions: int
    source_overlap_mean: float
    same_sources_share: float
    answer_f1_mean: float
    champion_p50_s: float
    champion_p95_s: float
    challenger_p50_s: float
    challenger_p95_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return asdict(self)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def shadow_summaries(settings: Settings | None = None) -> list[ShadowSummary]:
    """One summary per (champion, challenger) pair of the shadow experiment, most recent pair first."""
    from mlflow import MlflowClient

    settings = settings or get_settings()
    init_mlflow(settings, settings.shadow.experiment)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(settings.shadow.experiment)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{KIND_TAG}` = '{KIND}'",
        order_by=["attributes.start_time DESC"],
    )
    groups: dict[tuple[str, str], list[Any]] = {}
    for run in runs:  # newest first, so dict order is most recent pair first
        tags = run.data.tags
        groups.setdefault((tags.get(CHAMPION_HASH_TAG, ""), tags.get(CHALLENGER_HASH_TAG, "")), []).append(run)
    summaries = []
    for (champion_hash, challenger_hash), group in groups.items():
        series: dict[str, list[float]] = {k: [] for k in (OVERLAP, ANSWER_F1, CHAMPION_LATENCY, CHALLENGER_LATENCY)}
        for run in group:
            for key, values in series.items():
                values.extend(m.value for m in client.get_metric_history(run.info.run_id, key))
        if not series[OVERLAP]:
            continue
        tags = group[0].data.tags
        summaries.append(
            ShadowSummary(
                champion=tags.get(CHAMPION_TAG, ""),
                champion_hash=champion_hash,
                challenger=tags.get(CHALLENGER_TAG, ""),
                challenger_hash=challenger_hash,
                runs=len(group),
                questions=len(series[OVERLAP]),
                source_overlap_mean=statistics.fmean(series[OVERLAP]),
                same_sources_share=sum(v >= 1.0 for v in series[OVERLAP]) / len(series[OVERLAP]),
                answer_f1_mean=statistics.fmean(series[ANSWER_F1]),
                champion_p50_s=_quantile(series[CHAMPION_LATENCY], 0.5),
                champion_p95_s=_quantile(series[CHAMPION_LATENCY], 0.95),
                challenger_p50_s=_quantile(series[CHALLENGER_LATENCY], 0.5),
                challenger_p95_s=_quantile(series[CHALLENGER_LATENCY], 0.95),
            )
        )
    return summaries


def live_comparison(run_id: str, settings: Settings | None = None) -> ShadowSummary | None:
    """The shadow summary of the evaluation run's spec as challenger (by spec hash), or None."""
    from mlflow import MlflowClient

    settings = settings or get_settings()
    init_mlflow(settings)
    spec_hash = MlflowClient().get_run(run_id).data.params.get("spec_hash")
    if not spec_hash:
        return None
    return next((s for s in shadow_summaries(settings) if s.challenger_hash == spec_hash), None)
