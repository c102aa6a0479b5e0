"""``ragship reindex`` and ``ragship schedule reindex``: the reindex notebook, once or on a schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ragship.cli.common import JsonOption, err, out, print_error, print_json, print_sync_summary
from ragship.errors import RagshipError

commands = typer.Typer()
schedule_app = typer.Typer(help="Run jobs on a schedule.", no_args_is_help=True)

ParamOption = Annotated[
    list[str] | None,
    typer.Option("-p", "--param", help="Notebook parameter KEY=VALUE (repeatable), e.g. -p mode=full."),
]
NotebookOption = Annotated[
    Path | None, typer.Option("--notebook", help="Reindex notebook (default: notebooks/reindex.ipynb).")
]


def _parse_params(pairs: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RagshipError(f"-p {pair!r}: write parameters as KEY=VALUE, e.g. -p mode=incremental.")
        params[key.strip()] = value
    return params


@commands.command()
def reindex(
    params: ParamOption = None,
    notebook: NotebookOption = None,
    as_json: JsonOption = False,
) -> None:
    """Execute the reindex notebook with papermill and record the run in MLflow (experiment `reindex`)."""
    from ragship.reindex.job import ReindexFailedError, execute_reindex

    try:
        outcome = execute_reindex(_parse_params(params), notebook)
    except ReindexFailedError as e:
        if as_json:
            print_json({"error": str(e), "run_id": e.run_id})
        print_error(e)
        raise typer.Exit(1) from None
    if as_json:
        # stdout holds only the counts; the failures' reasons still reach the user
        for failure in outcome.summary.get("failures", []):
            err.print(f"failed {failure['source']}: {failure['reason']}", highlight=False)
        print_json(outcome.counts())
    else:
        print_sync_summary(outcome.summary)
        out.print(f"MLflow run {outcome.run_id} (experiment reindex)")


@schedule_app.command("reindex")
def schedule_reindex(
    every: Annotated[str | None, typer.Option("--every", help="Interval: 30s, 15m, 2h, 1d.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Five-field crontab expression.")] = None,
    params: ParamOption = None,
    notebook: NotebookOption = None,
    lock: Annotated[
        Path | None, typer.Option("--lock", help="Lock file shared by every runner (default: <home>/reindex.lock).")
    ] = None,
    run_now: Annotated[bool, typer.Option("--run-now", help="Also run once at start.")] = False,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="On SIGTERM/SIGINT, how long a run in progress may go on before it is asked to stop before "
            "its next batch (0s: at once). Keep it below your supervisor's kill timeout.",
        ),
    ] = "60s",
) -> None:
    """Run `ragship reindex` on a schedule until SIGTERM; overlapping runs are skipped, never stacked.

    On SIGTERM no new run starts and the run in progress gets --grace to finish; then it stops before its
    next batch, is recorded in MLflow as KILLED with its counts, and the next run resumes from there.
    """
    import logging

    from ragship.reindex.job import check_notebook_params, default_notebook, execute_reindex
    from ragship.reindex.schedule import LockedJob, make_trigger, parse_every, run_schedule
    from ragship.settings import get_settings

    settings = get_settings()
    trigger = make_trigger(every, cron)
    grace_period = parse_every(grace, option="--grace", allow_zero=True)
    values = _parse_params(params)
    check_notebook_params((notebook or default_notebook()).resolve(), values)  # fail now, not at the first run
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def job(stop_file: Path) -> bool:
        outcome = execute_reindex(values, notebook, settings, stop_file=stop_file)
        logging.getLogger("ragship.schedule").info("reindex counts: %s", json.dumps(outcome.counts()))
        return not outcome.cancelled

    locked = LockedJob(job, lock or settings.home / "reindex.lock")
    run_schedule(locked, trigger, run_now=run_now, grace=grace_period)
