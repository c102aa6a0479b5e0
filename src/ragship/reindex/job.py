"""Scheduled reindexing: the parameters of the reindex notebook, what it runs, and running it with papermill.

``notebooks/reindex.ipynb`` calls :func:`run_reindex`; ``ragship reindex`` calls :func:`execute_reindex`,
which validates the parameters, executes the notebook with papermill and records the run in MLflow
(experiment ``reindex``): parameters, counts, duration and the executed notebook.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ragship.enums import SyncMode
from ragship.errors import ConfigError, RagshipError
from ragship.settings import Settings, get_settings

REINDEX_EXPERIMENT = "reindex"
SUMMARY_TAG = "summary"
COUNTS = ("added", "updated", "deleted", "unchanged", "failed")
# The notebook parameter through which a scheduler asks a run in progress to stop at its next batch.
STOP_FILE_PARAM = "stop_file"
STOPPED_NOTE = "stopped on request before finishing; the next incremental run resumes from the manifest"


def default_notebook() -> Path:
    """``notebooks/reindex.ipynb`` under the working directory, else the one in the ragship checkout."""
    local = Path.cwd() / "notebooks" / "reindex.ipynb"
    return local if local.is_file() else Path(__file__).resolve().parents[3] / "notebooks" / "reindex.ipynb"


class ReindexParams(BaseModel):
    """Parameters of the reindex notebook; papermill injects them into its ``parameters`` cell."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=lambda: ["docs"], min_length=1, description="Files/directories.")
    spec: str | None = Field(None, description="Spec path or models:/ragship@champion; settings when unset.")
    store: str | None = Field(None, description="Embedded store directory or Elasticsearch URL.")
    mode: SyncMode = SyncMode.INCREMENTAL
    dry_run: bool = False
    allow_failures: bool = Field(False, description="Full mode: promote even when some files fail.")
    batch_files: int = Field(32, ge=1, le=10_000, description="Files per batch and per manifest commit.")
    stop_file: str | None = Field(
        None, description="When this file exists, stop before the next batch (set by `ragship schedule`)."
    )

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value: Any) -> Any:
        # `-p sources=docs,README.md` on the command line arrives as one string.
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @classmethod
    def parse(cls, values: dict[str, Any], where: str = "reindex parameters") -> ReindexParams:
        """Validate, turning pydantic's report into one line per bad parameter."""
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            problems = "; ".join(
                f"'{'.'.join(str(p) for p in err['loc']) or '?'}': "
                + ("unknown parameter" if err["type"] == "extra_forbidden" else err["msg"])
                + (f" (got {err['input']!r})" if err["type"] != "extra_forbidden" else "")
                for err in e.errors()
            )
            known = ", ".join(cls.model_fields)
            raise ConfigError(f"Bad {where}: {problems}. Known parameters: {known}.") from None


def run_reindex(**params: Any) -> dict[str, Any]:
    """Sync the sources into the store (what the reindex notebook runs); returns the summary.

    Shows a progress bar in the notebook and never raises for a single bad file (it is counted as failed).
    When ``stop_file`` appears, the sync stops before its next batch and the summary says ``cancelled``.
    """
    from tqdm.auto import tqdm

    from ragship.assembly import open_indexer, resolve_spec, store_for
    from ragship.settings import redacted_url

    checked = ReindexParams.parse(params)
    settings = get_settings()
    spec = resolve_spec(checked.spec, settings)
    store = store_for(spec, checked.store, settings)
    bar = tqdm(total=0, unit="file", desc=f"{checked.mode} sync")
    stop_file = Path(checked.stop_file) if checked.stop_file else None

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        report = open_indexer(spec, store, settings, batch_files=checked.batch_files).sync(
            checked.sources,
            mode=checked.mode,
            dry_run=checked.dry_run,
            allow_failures=checked.allow_failures,
            progress=progress,
            should_stop=stop_file.exists if stop_file else None,
        )
    finally:
        bar.close()
    summary = report.to_dict()
    summary["store"] = redacted_url(checked.store or settings.store_location)
    return summary


@dataclass
class ReindexOutcome:
    """A finished ``ragship reindex``: the notebook's summary and the MLflow run that recorded it."""

    summary: dict[str, Any]
    run_id: str
    notebook: Path

    @property
    def cancelled(self) -> bool:
        """Whether the run stopped on request before it had synced everything."""
        return bool(self.summary.get("cancelled"))

    def counts(self) -> dict[str, Any]:
        """The counts and the run id, as ``ragship reindex --json`` prints them."""
        return {**{k: self.summary.get(k, 0) for k in COUNTS}, "cancelled": self.cancelled, "run_id": self.run_id}


class ReindexFailedError(RagshipError):
    """The reindex notebook raised; the MLflow run is marked FAILED and holds the executed notebook."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


def check_notebook_params(notebook: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate parameters against the notebook's ``parameters`` cell before anything runs.

    Unknown keys are refused by name. Values for the standard reindex parameters are type-checked and
    coerced (``dry_run=true`` -> ``True``); a custom notebook's own extra parameters pass through as given.
    """
    import papermill

    if not notebook.is_file():
        raise ConfigError(f"Reindex notebook {notebook} not found; pass --notebook PATH.")
    declared = papermill.inspect_notebook(str(notebook))
    if not declared:
        raise ConfigError(f"{notebook} has no cell tagged 'parameters'; tag the cell that holds its defaults.")
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        raise ConfigError(
            f"Unknown parameter {', '.join(repr(k) for k in unknown)} for {notebook.name}; "
            f"it takes: {', '.join(declared)}."
        )
    standard = {k: v for k, v in raw.items() if k in ReindexParams.model_fields}
    checked = ReindexParams.parse(standard, where=f"parameters for {notebook.name}").model_dump(
        mode="json", include=set(standard)
    )
    return {**raw, **checked}


def _error_of(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    text = f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"
    return text.strip()[:2000]


def _summary_of(notebook: Path) -> dict[str, Any]:
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if SUMMARY_TAG in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                data = output.get("data", {}).get("application/json")
                if data is not None:
                    return dict(data)
    raise RagshipError(f"The executed notebook has no output in its cell tagged '{SUMMARY_TAG}'.")


def execute_reindex(
    params: dict[str, Any] | None = None,
    notebook: Path | None = None,
    settings: Settings | None = None,
    kernel_name: str | None = None,
    stop_file: Path | None = None,
) -> ReindexOutcome:
    """Execute the reindex notebook with papermill and record an MLflow run in experiment ``reindex``.

    :param params: Notebook parameters (validated first: nothing runs when one is bad).
    :param notebook: Defaults to :func:`default_notebook`.
    :param stop_file: Passed to a notebook that declares ``stop_file``: when the file appears, the run stops
        before its next batch and is recorded as KILLED with the counts it reached.
    :raises ReindexFailedError: when the notebook raised; the run is recorded as FAILED with the error.
    """
    import mlflow
    import papermill

    from ragship.settings import redacted_url
    from ragship.tracking.runs import init_mlflow

    settings = settings or get_settings()
    notebook = (notebook or default_notebook()).resolve()
    values = check_notebook_params(notebook, params or {})
    if stop_file is not None and STOP_FILE_PARAM in papermill.inspect_notebook(str(notebook)):
        values[STOP_FILE_PARAM] = str(stop_file)
    init_mlflow(settings, experiment=REINDEX_EXPERIMENT)
    logged = {k: redacted_url(v) if isinstance(v, str) else v for k, v in values.items()}
    with tempfile.TemporaryDirectory(prefix="ragship-reindex-") as tmp:
        executed = Path(tmp) / notebook.name
        with mlflow.start_run(run_name=f"reindex-{values.get('mode', 'incremental')}") as run:
            mlflow.log_params(
                {
                    "notebook": notebook.name,
                    **{k: json.dumps(v) for k, v in logged.items() if k != STOP_FILE_PARAM},
                }
            )
            started = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(notebook),
                    str(executed),
                    parameters=values,
                    cwd=os.getcwd(),  # source names are relative to where the user runs ragship
                    kernel_name=kernel_name,
                    progress_bar=False,
                    log_output=False,
                )
            except Exception as e:
                error = _error_of(e)
                mlflow.log_metric("duration_s", time.perf_counter() - started)
                mlflow.set_tag("error", error)
                if executed.exists():
                    mlflow.log_artifact(str(executed))
                raise ReindexFailedError(
                    f"Reindex notebook failed: {error}. The executed notebook is in MLflow run {run.info.run_id}.",
                    run.info.run_id,
                ) from None
            summary = _summary_of(executed)
            mlflow.log_metrics(
                {
                    **{k: float(summary.get(k, 0)) for k in (*COUNTS, "chunks_written", "chunks_deleted")},
                    "duration_s": time.perf_counter() - started,
                    "sync_duration_s": float(summary.get("duration_s", 0.0)),
                }
            )
            mlflow.log_dict(summary, "summary.json")
            mlflow.log_artifact(str(executed))
            if summary.get("failed"):
                mlflow.set_tag("failed_files", ", ".join(f["source"] for f in summary.get("failures", []))[:5000])
            if summary.get("cancelled"):
                mlflow.set_tag("stopped", STOPPED_NOTE)
                mlflow.end_run(status="KILLED")
        return ReindexOutcome(summary=summary, run_id=run.info.run_id, notebook=notebook)
