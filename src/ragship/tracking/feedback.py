"""Users' ratings of served answers, recorded in MLflow against what is being served."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragship.enums import RATINGS, RatingName
from ragship.errors import TrackingError
from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec
from ragship.tracking.registry import champion
from ragship.tracking.runs import KIND_TAG, init_mlflow

UP, DOWN = RATINGS

# What each feedback run holds: its tags, its metric, its artifact.
KIND = "feedback"
SERVED_TAG = "ragship.served"
SPEC_HASH_TAG = "ragship.spec_hash"
RATING_TAG = "ragship.rating"
CHAMPION_VERSION_TAG = "ragship.champion_version"
CHAMPION_RUN_TAG = "ragship.champion_run_id"
PRINCIPAL_TAG = "ragship.principal"  # who rated: a principal's name, never its credential
COMMENT_TAG = "mlflow.note.content"  # MLflow shows it as the run's description
RATING_METRIC = "rating"
CHAMPION_METRIC = "feedback_rating"
ARTIFACT = "feedback.json"


def rating_value(rating: RatingName) -> int:
    """The number a rating is recorded as: 1 for up, -1 for down."""
    return 1 if rating == UP else -1


def rating_name(value: float) -> RatingName:
    """The name of a recorded rating value."""
    return UP if value > 0 else DOWN


@dataclass
class Feedback:
    """A user's rating of one served answer."""

    rating: int
    question: str
    answer: str
    comment: str = ""
    sources: list[str] = field(default_factory=list)
    #: Who rated (the principal's name, never its key or token); "" outside a guarded service.
    principal: str = ""


class FeedbackRecorder:
    """Records ratings in MLflow against what is being served.

    Each rating becomes a run in the feedback experiment, tagged with the served spec's hash and the
    champion's version and run; the champion's run also gets a ``feedback_rating`` metric point, so
    its page shows how users rate it.

    :param spec: The served spec.
    :param served: Where the spec came from (``models:/ragship@champion (version 3)``, a path, ...).
    """

    def __init__(self, spec: PipelineSpec, served: str, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.spec = spec
        self.served = served
        self._client: Any = None
        self._experiment_id = ""
        self._champion: dict[str, Any] | None = None

    def _connect(self) -> Any:
        """The MLflow client, the feedback experiment and the champion, looked up on first use."""
        from mlflow import MlflowClient

        if self._client is None:
            init_mlflow(self.settings, self.settings.serving.feedback_experiment)
            client = MlflowClient()
            experiment = client.get_experiment_by_name(self.settings.serving.feedback_experiment)
            assert experiment is not None  # init_mlflow created it
            self._experiment_id = experiment.experiment_id
            current = champion(self.settings)
            # Only tie ratings to the champion when the champion is what is served.
            if current is not None and current.get("spec_hash") == self.spec.hash:
                self._champion = current
            self._client = client
        return self._client

    def record(self, feedback: Feedback) -> str:
        """Log ``feedback``; returns the MLflow run id holding it.

        :raises TrackingError: when MLflow cannot take it (it raises many types when its store is down).
        """
        try:
            return self._record(feedback)
        except TrackingError:
            raise
        except Exception as e:
            raise TrackingError(f"Feedback could not be recorded in MLflow: {e}") from e

    def _record(self, feedback: Feedback) -> str:
        client = self._connect()
        rating = rating_name(feedback.rating)
        tags = {KIND_TAG: KIND, SERVED_TAG: self.served, SPEC_HASH_TAG: self.spec.hash, RATING_TAG: rating}
        if self._champion is not None:
            tags[CHAMPION_VERSION_TAG] = str(self._champion["version"])
            tags[CHAMPION_RUN_TAG] = str(self._champion["run_id"])
        if feedback.comment:
            tags[COMMENT_TAG] = feedback.comment
        if feedback.principal:
            tags[PRINCIPAL_TAG] = feedback.principal
        run_id = str(client.create_run(self._experiment_id, tags=tags, run_name=f"{KIND}-{rating}").info.run_id)
        client.log_metric(run_id, RATING_METRIC, feedback.rating)
        client.log_dict(run_id, asdict(feedback), ARTIFACT)
        client.set_terminated(run_id)
        if self._champion is not None:
            client.log_metric(str(self._champion["run_id"]), CHAMPION_METRIC, feedback.rating)
        return run_id


@dataclass
class RecordedFeedback:
    """One rating as recorded: what was asked, answered and shown, and the run that holds it.

    :param time: When the rating was recorded (UTC).
    """

    run_id: str
    time: datetime
    rating: RatingName
    question: str
    answer: str
    sources: list[str]
    comment: str
    served: str


@dataclass
class FeedbackRead:
    """Ratings read back from MLflow, oldest first, and the runs that could not be read (``run id: why``)."""

    ratings: list[RecordedFeedback] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def read_feedback(
    since: datetime,
    rating: RatingName | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FeedbackRead:
    """The ratings recorded by :class:`FeedbackRecorder` from ``since`` on, optionally only ``rating`` ones.

    Reads only the fields a rating is made of (never a run's tags wholesale).

    :param since: Earliest recording time; a naive datetime is taken as UTC.
    :param progress: Called with ``(done, total)`` as runs are read.
    :raises TrackingError: when MLflow cannot be read.
    """
    settings = settings or get_settings()
    try:
        return _read(since, rating, settings, progress)
    except TrackingError:
        raise
    except Exception as e:
        raise TrackingError(f"Feedback could not be read from MLflow: {e}") from e


def _read(
    since: datetime, rating: RatingName | None, settings: Settings, progress: Callable[[int, int], None] | None
) -> FeedbackRead:
    from mlflow import MlflowClient

    name = settings.serving.feedback_experiment
    init_mlflow(settings, name)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None  # init_mlflow created it
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    query = f"tags.`{KIND_TAG}` = '{KIND}' and attributes.start_time >= {int(since.timestamp() * 1000)}"
    if rating is not None:
        query += f" and tags.`{RATING_TAG}` = '{rating}'"
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment.experiment_id],
            query,
            order_by=["attributes.start_time ASC"],
            max_results=1000,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    read = FeedbackRead()
    with tempfile.TemporaryDirectory(prefix="ragship-feedback-") as tmp:
        for done, run in enumerate(runs, start=1):
            run_id = str(run.info.run_id)
            try:
                read.ratings.append(_recorded(client, run, Path(tmp) / run_id))
            except (OSError, ValueError, KeyError, TypeError) as e:
                read.unreadable.append(f"{run_id}: {ARTIFACT} unreadable ({e})")
            if progress is not None:
                progress(done, len(runs))
    return read


def _recorded(client: Any, run: Any, folder: Path) -> RecordedFeedback:
    run_id = str(run.info.run_id)
    folder.mkdir()
    data = json.loads(Path(client.download_artifacts(run_id, ARTIFACT, str(folder))).read_text(encoding="utf-8"))
    sources = data.get("sources", [])
    if not isinstance(data.get("question"), str) or not isinstance(sources, list):
        raise ValueError("no question, or sources that are not a list")
    tags = run.data.tags
    recorded_rating = tags.get(RATING_TAG)
    if recorded_rating not in RATINGS:
        recorded_rating = rating_name(float(data["rating"]))
    return RecordedFeedback(
        run_id=run_id,
        time=datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC),
        rating=recorded_rating,
        question=data["question"],
        answer=str(data.get("answer", "")),
        sources=[str(s) for s in sources],
        comment=str(data.get("comment", "")),
        served=str(tags.get(SERVED_TAG, "")),
    )
