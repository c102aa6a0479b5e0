"""``ragship queue`` (the local Redis broker, queue status, one job), ``ragship enqueue`` and ``ragship worker``."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ragship.cli.common import JsonOption, err, out, print_json
from ragship.errors import RagshipError
from ragship.queue.broker import BrokerKind

if TYPE_CHECKING:
    from ragship.local.rabbitmq_server import LocalRabbitmq
    from ragship.local.redis_server import LocalRedis
    from ragship.queue.client import JobQueue

queue_app = typer.Typer(
    help="Run a local broker (Redis or RabbitMQ) and look into the indexing queue.", no_args_is_help=True
)
commands = typer.Typer()

NameOption = Annotated[str, typer.Option("--name", help="Server name (several can run side by side).")]
BrokerOption = Annotated[
    BrokerKind,
    typer.Option(
        "--broker", help="The local broker (rabbitmq carries messages only: job state needs a Redis as well)."
    ),
]


def _local(name: str) -> LocalRedis:
    from ragship.local.redis_server import LocalRedis
    from ragship.settings import get_settings

    settings = get_settings()
    return LocalRedis(settings.local_redis, home=settings.home, name=name)


def _local_rabbitmq(name: str) -> LocalRabbitmq:
    from ragship.local.rabbitmq_server import LocalRabbitmq
    from ragship.settings import get_settings

    settings = get_settings()
    return LocalRabbitmq(settings.local_rabbitmq, home=settings.home, name=name)


def _queue() -> JobQueue:
    from ragship.queue.client import JobQueue
    from ragship.settings import get_settings

    return JobQueue(get_settings().queue)


@queue_app.command("start")
def queue_start(
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = None,
    name: NameOption = "default",
    broker: BrokerOption = BrokerKind.REDIS,
    password_env: Annotated[
        str | None,
        typer.Option(
            help="Require a password: the one held by this environment variable (clients: RAGSHIP_QUEUE__PASSWORD)."
        ),
    ] = None,
) -> None:
    """Start a local Redis (append-only persistence, loopback only) and print its URL for RAGSHIP_QUEUE__URL;
    with --broker rabbitmq, a local RabbitMQ node (loopback only, user guest) and its amqp:// URL."""
    from ragship.environment import env_secret

    if broker == BrokerKind.RABBITMQ:
        if password_env:
            raise RagshipError("--password-env is for Redis; the local RabbitMQ takes user guest from loopback only.")
        out.print(_local_rabbitmq(name).start(port=port), markup=False, highlight=False)
        return

    password = None
    if password_env:
        password = env_secret(password_env)
        if not password:
            raise RagshipError(f"--password-env {password_env}: that environment variable is not set.")
    out.print(_local(name).start(port=port, password=password), markup=False, highlight=False)


@queue_app.command("stop")
def queue_stop(name: NameOption = "default", broker: BrokerOption = BrokerKind.REDIS) -> None:
    """Stop the local Redis (it writes its append-only file out first; queued jobs survive), or the local
    RabbitMQ with --broker rabbitmq (a graceful shutdown; its queues are on disk)."""
    server = _local_rabbitmq(name) if broker == BrokerKind.RABBITMQ else _local(name)
    err.print("stopped" if server.stop() else "not running")


@queue_app.command("status")
def queue_status(
    name: NameOption = "default",
    dead: Annotated[int, typer.Option(min=0, help="Dead-lettered jobs to list, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The queue at RAGSHIP_QUEUE__URL: waiting, delayed and dead-lettered jobs (with reasons), jobs by status;
    and the local server when one runs. Exit 1 when the broker cannot be reached."""
    from ragship.queue.job_state import QueueUnavailableError

    local = _local(name).status()
    try:
        stats = _queue().stats(dead_letters=dead)
    except QueueUnavailableError as e:
        if as_json:
            print_json({"local": local.to_dict(), "reachable": False, "error": str(e)})
        else:
            err.print(f"[red]unreachable:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        print_json({"local": local.to_dict(), "reachable": True, **stats.to_dict()})
        return
    where = f"running at {local.url} (data in {local.data_dir})" if local.running else "not running"
    out.print(f"local Redis ({name}): {where}", markup=False, highlight=False)
    out.print(
        f"queue {stats.queue} at {stats.url}: {stats.waiting} waiting, "
        f"{'?' if stats.in_flight is None else stats.in_flight} held by workers, "
        f"{stats.delayed} waiting to retry, {stats.dead_lettered} dead-lettered",
        markup=False,
        highlight=False,
    )
    out.print("jobs: " + ", ".join(f"{n} {s}" for s, n in stats.jobs.items()), markup=False, highlight=False)
    for letter in stats.dead_letters:
        out.print(f"dead letter {letter.job_id}: {letter.reason}", markup=False, highlight=False)


@queue_app.command("job")
def queue_job(job_id: Annotated[str, typer.Argument(help="The id `ragship enqueue` printed.")]) -> None:
    """Show one job's state as JSON (status, counts, failures, the reason it failed)."""
    print_json(_queue().job(job_id).model_dump(mode="json"))


@commands.command()
def enqueue(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories; workers must see the same paths.")],
    per_job: Annotated[
        int | None, typer.Option("--per-job", min=1, help="Split the files into jobs of this many (default: one job).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until every job is finished; exit 1 if one failed.")
    ] = False,
    timeout_s: Annotated[float, typer.Option("--timeout", min=1, help="With --wait: give up after this long.")] = 3600,
    as_json: JsonOption = False,
) -> None:
    """Put files on the indexing queue; prints one job id per job at once (workers do the indexing)."""
    from ragship.pipelines.indexing import discover_files

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise RagshipError(f"path not found: {', '.join(missing)}; nothing was queued.")
    if per_job:
        files, _ = discover_files(paths)
        groups: list[list[Path]] = [files[i : i + per_job] for i in range(0, len(files), per_job)]
    else:
        groups = [list(paths)]
    queue = _queue()
    job_ids = [queue.submit_paths(group) for group in groups if group]
    if not wait:
        if as_json:
            print_json({"jobs": job_ids})
        else:
            for job_id in job_ids:
                out.print(job_id, markup=False, highlight=False)
        return
    deadline = time.monotonic() + timeout_s
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        pending = {j for j in pending if not queue.job(j).status.final}
        if pending:
            time.sleep(0.5)
    jobs = [queue.job(j) for j in job_ids]
    if as_json:
        print_json({"jobs": [j.model_dump(mode="json") for j in jobs]})
    else:
        for job in jobs:
            out.print(f"{job.id} {job.status.value} {job.counts}", markup=False, highlight=False)
    if pending or any(j.status.value != "done" for j in jobs):
        raise typer.Exit(1)


@commands.command()
def worker(
    queues: Annotated[
        list[str] | None, typer.Option("--queues", help="Queues to take jobs from (default: the indexing queue).")
    ] = None,
    processes: Annotated[int | None, typer.Option("--processes", min=1, help="Worker processes.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Jobs at once per process.")] = None,
) -> None:
    """Run indexing workers (Dramatiq) until SIGTERM: jobs in hand finish, then it exits."""
    from ragship.settings import get_settings

    settings = get_settings()
    n_processes = processes or settings.worker.processes
    n_threads = threads or settings.worker.threads
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "ragship.queue.worker:setup",
        "--processes",
        str(n_processes),
        "--threads",
        str(n_threads),
        "--queues",
        *(queues or [settings.queue.name]),
        "--worker-shutdown-timeout",
        str(int(settings.worker.shutdown_timeout_s * 1000)),
    ]
    env = {
        **os.environ,
        # One job per thread plus one in hand: the next job starts the moment one ends. With one per thread,
        # Dramatiq's consumer (which sleeps up to a second between polls while its threads are busy) fetched
        # the next job only when it woke: ~0.35 s idle per job, 1.3-1.7x direct indexing with one worker
        # (benchmarks/README.md). The cost: at most one job per process waits there while another could run it.
        "dramatiq_queue_prefetch": str(n_threads + 1),
    }
    if settings.worker.metrics_port:
        # The processes write their samples here; the fork process serves them all on one port.
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ragship-worker-metrics-")
        argv += ["--fork-function", "ragship.queue.metrics:serve"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
