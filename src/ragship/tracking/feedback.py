"""Users' ratings of served answers, recorded in MLflow against what is being served."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ragship.errors import TrackingError
from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec
from ragship.tracking.registry import champion
from ragship.tracking.runs import init_mlflow


@dataclass
class Feedback:
    """A user's rating of one served answer."""

    rating: int
    question: str
    answer: str
    comment: str = ""
    sources: list[str] = field(default_factory=list)


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
        rating = "up" if feedback.rating > 0 else "down"
        tags = {
            "ragship.kind": "feedback",
            "ragship.served": self.served,
            "ragship.spec_hash": self.spec.hash,
            "ragship.rating": rating,
        }
        if self._champion is not None:
            tags["ragship.champion_version"] = str(self._champion["version"])
            tags["ragship.champion_run_id"] = str(self._champion["run_id"])
        if feedback.comment:
            tags["mlflow.note.content"] = feedback.comment
        run_id = str(client.create_run(self._experiment_id, tags=tags, run_name=f"feedback-{rating}").info.run_id)
        client.log_metric(run_id, "rating", feedback.rating)
        client.log_dict(run_id, asdict(feedback), "feedback.json")
        client.set_terminated(run_id)
        if self._champion is not None:
            client.log_metric(str(self._champion["run_id"]), "feedback_rating", feedback.rating)
        return run_id
