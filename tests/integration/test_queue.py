"""The indexing queue with real processes: a Redis started by `ragship queue start`, a local RabbitMQ node
(the other broker; job state then stays in that Redis), `ragship worker` subprocesses (Dramatiq),
`ragship enqueue`, real API replicas (`bentoml serve`), and the embedded store or Elasticsearch.

Timeouts are shortened through settings (heartbeat 3 s, maintenance on every broker command, backoff
0.2-1 s) so redelivery and retries happen in seconds on Redis; RabbitMQ requeues a dead consumer's
messages when its connection closes. Every wait polls with a generous deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ragship.local.process import poll, stop_groups
from ragship.local.rabbitmq_server import LocalRabbitmq
from ragship.local.redis_server import LocalRedis
from ragship.queue.client import JobQueue
from ragship.queue.job_state import Job, JobStatus, QueueUnavailableError
from ragship.settings import load_settings

RAGSHIP = str(Path(sys.executable).parent / "ragship")
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

FAST = {
    "RAGSHIP_QUEUE__HEARTBEAT_TIMEOUT_MS": "3000",
    "RAGSHIP_QUEUE__MAINTENANCE_CHANCE": "1000000",
    "RAGSHIP_QUEUE__MAX_RETRIES": "2",
    "RAGSHIP_QUEUE__MIN_BACKOFF_MS": "200",
    "RAGSHIP_QUEUE__MAX_BACKOFF_MS": "1000",
    "RAGSHIP_WORKER__METRICS_PORT": "0",
    "RAGSHIP_WORKER__SHUTDOWN_TIMEOUT_S": "60",
    # One file per pipeline run and manifest commit: a killed job leaves part of its files done.
    "RAGSHIP_INDEX_BATCH_FILES": "1",
}


def _wait(what: str, check: Callable[[], Any], timeout_s: float = 240, every_s: float = 0.2) -> Any:
    value = poll(check, timeout_s, every_s)
    if not value:
        raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
    return value


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("queue-home")


@pytest.fixture(scope="module")
def redis_url(home: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, started the way a user does (`ragship queue start`)."""
    started = subprocess.run(
        [RAGSHIP, "queue", "start", "--port", "0"],
        env={**os.environ, "RAGSHIP_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    try:
        yield url
    finally:
        LocalRedis(load_settings().local_redis, home=home).remove()


@pytest.fixture(scope="module")
def rabbitmq_url(home: Path) -> Iterator[str]:
    """A real RabbitMQ node (Debian's rabbitmq-server) on free loopback ports, private to this module."""
    node = LocalRabbitmq(load_settings().local_rabbitmq, home=home, name="test")
    try:
        yield node.start(port=0)
    finally:
        node.remove()


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """The broker a test runs on: Redis unless the test is parametrized with ``rabbitmq``."""
    return str(getattr(request, "param", "redis"))


@pytest.fixture
def env(home: Path, redis_url: str, broker: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings of one test: its own queue namespace (and RabbitMQ queue) and store, the fast timeouts."""
    tag = uuid.uuid4().hex[:8]
    queue = {"RAGSHIP_QUEUE__URL": redis_url}
    if broker == "rabbitmq":
        # Messages on RabbitMQ (a queue of this test's own), job state and uploads in Redis.
        queue = {
            "RAGSHIP_QUEUE__URL": request.getfixturevalue("rabbitmq_url"),
            "RAGSHIP_QUEUE__STATE_URL": redis_url,
            "RAGSHIP_QUEUE__NAME": f"indexing-{tag}",
        }
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "RAGSHIP_HOME": str(home),
        "RAGSHIP_STORE": str(tmp_path / "store"),
        "RAGSHIP_QUEUE__NAMESPACE": f"test-{tag}",
        **queue,
        **FAST,
    }


def _queue(env: dict[str, str]) -> JobQueue:
    overrides = {k: v for k, v in env.items() if k.startswith("RAGSHIP_QUEUE__")}
    queue = {k.removeprefix("RAGSHIP_QUEUE__").lower(): v for k, v in overrides.items()}
    return JobQueue(load_settings(queue=queue).queue)


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[int], list[subprocess.Popen[bytes]]]]:
    """Start `ragship worker` subprocesses (each its own process group); all are stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> list[subprocess.Popen[bytes]]:
        procs = []
        for _ in range(n):
            log = (tmp_path / f"worker-{len(started)}.log").open("wb")
            proc = subprocess.Popen(
                [RAGSHIP, "worker", "--threads", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            started.append(proc)
            procs.append(proc)
        return procs

    yield start
    stop_groups(started)


@contextmanager
def _api(env: dict[str, str], tmp_path: Path, name: str = "serve") -> Iterator[str]:
    """A real API replica (`bentoml serve bentos.query:RAG`) on the test's queue; yields its URL."""
    from ragship.serving.launch import bentoml_serve

    env = {**env, "BENTOML_HOME": str(tmp_path / f"bentoml-{name}"), "BENTOML_DO_NOT_TRACK": "True"}
    with bentoml_serve("bentos.query:RAG", env=env, log=tmp_path / f"{name}.log", cwd=REPO, timeout_s=300) as url:
        yield url


def _corpus(root: Path, files: int) -> Path:
    docs = root / "corpus"
    docs.mkdir()
    for i in range(files):
        (docs / f"doc-{i:03d}.md").write_text(
            f"# Note {i}\n\nField note number {i}: the heron colony {i % 7} counted {i * 3} nests this spring.\n"
        )
    return docs


def _children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _store_ids(store: str, es_index: str | None = None) -> tuple[list[str], dict[str, int]]:
    from ragship.stores import open_store

    settings = load_settings(es={"index": es_index}) if es_index else load_settings()
    documents = open_store(store, embedding_dim=None, settings=settings).filter_documents()
    per_source: dict[str, int] = {}
    for doc in documents:
        per_source[str(doc.meta.get("source"))] = per_source.get(str(doc.meta.get("source")), 0) + 1
    return [d.id for d in documents], per_source


@pytest.fixture
def store_env(request: pytest.FixtureRequest, env: dict[str, str]) -> dict[str, str]:
    """The workers' store: the embedded one (two processes writing one SQLite file) or Elasticsearch."""
    if getattr(request, "param", "embedded") == "embedded":
        return env
    es_url = request.getfixturevalue("es_url")
    alias = request.getfixturevalue("es_alias")
    env.update({"RAGSHIP_STORE": es_url, "RAGSHIP_ES__INDEX": alias})
    return env


# Both stores on Redis; RabbitMQ with Elasticsearch (the broker and the store are independent, and each
# run takes minutes).
@pytest.mark.parametrize(
    ("broker", "store_env"),
    [("redis", "embedded"), ("redis", "elasticsearch"), ("rabbitmq", "elasticsearch")],
    indirect=True,
)
def test_kill_a_worker_mid_job_loses_and_duplicates_nothing(
    broker: str, store_env: dict[str, str], workers: Callable[[int], list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    import httpx

    env = store_env
    docs = _corpus(tmp_path, 200)
    uploads = {f"corpus/{f.name}": f.read_bytes() for f in sorted(docs.iterdir())}
    names = sorted(uploads)
    # 200 documents as 20 jobs of 10, submitted through a real API replica (`/index/submit`).
    with _api(env, tmp_path) as url, httpx.Client(base_url=url, timeout=60) as http:
        job_ids = []
        for i in range(0, 200, 10):
            batch = [{"source": n, "text": uploads[n].decode()} for n in names[i : i + 10]]
            answer = http.post("/index/submit", json={"documents": batch})
            assert answer.status_code == 202, answer.text
            job_ids.append(answer.json()["job_id"])
    assert len(set(job_ids)) == 20
    queue = _queue(env)
    assert queue.stats().waiting == 20

    masters = workers(2)

    # A job held by a worker process: running, with that process's pid. Freeze the process, make sure
    # it still holds the job (it cannot finish while frozen), then kill it with SIGKILL.
    def held_job() -> tuple[str, int] | None:
        ours = set().union(*(_children(m.pid) for m in masters))
        for job_id in job_ids:
            job = queue.job(job_id)
            # mid-job: some of its files are indexed and recorded, some not yet
            if job.status == JobStatus.RUNNING and job.pid in ours and 1 <= job.progress_done < job.progress_total:
                return job_id, int(job.pid or 0)
        return None

    deadline = time.monotonic() + 300
    victim: tuple[str, int] | None = None
    while victim is None and time.monotonic() < deadline:
        candidate = _wait("a worker holding a job", held_job, timeout_s=300, every_s=0.05)
        job_id, pid = candidate
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.3)  # let any write it sent before the stop land
        job = queue.job(job_id)
        if job.status == JobStatus.RUNNING and job.pid == pid:
            os.kill(pid, signal.SIGKILL)
            victim = candidate
        else:
            os.kill(pid, signal.SIGCONT)
    assert victim is not None, "no worker was caught holding a job"
    killed_job, killed_pid = victim

    def all_final() -> list[Job] | None:
        jobs = [queue.job(j) for j in job_ids]
        return jobs if all(j.status.final for j in jobs) else None

    jobs = _wait("all jobs to finish", all_final, timeout_s=400, every_s=0.5)
    assert [j.status for j in jobs] == [JobStatus.DONE] * 20, [(j.id, j.status, j.error) for j in jobs]
    by_id = {j.id: j for j in jobs}
    redelivered = by_id[killed_job]
    assert redelivered.redeliveries >= 1 and redelivered.attempts >= 2
    assert redelivered.pid != killed_pid
    # What the killed run had finished is not written again; the rest is.
    assert redelivered.counts["unchanged"] >= 1 and redelivered.counts["added"] >= 1
    for job in jobs:
        assert job.counts["failed"] == 0 and not job.failures
        assert job.counts["added"] + job.counts["updated"] + job.counts["unchanged"] == 10, job

    # Exactly the chunks an uninterrupted, single-process run produces: none lost, none twice.
    from ragship.assembly import open_indexer

    reference = str(tmp_path / "reference")
    report = open_indexer(None, reference).index_documents(uploads)
    assert report.ok
    expected_ids, expected_per_source = _store_ids(reference)
    found_ids, found_per_source = _store_ids(env["RAGSHIP_STORE"], env.get("RAGSHIP_ES__INDEX"))
    assert len(found_ids) == len(set(found_ids))
    assert sorted(found_ids) == sorted(expected_ids)
    assert found_per_source == expected_per_source
    assert sum(j.counts["added"] + j.counts["unchanged"] for j in jobs) == 200
    print(
        f"\n{broker}: killed pid {killed_pid} holding job {killed_job}; redelivered {redelivered.redeliveries}x, "
        f"{redelivered.counts}; chunks expected {len(expected_ids)}, found {len(found_ids)} "
        f"({len(set(found_ids))} unique)"
    )


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)
def test_poison_job_is_dead_lettered_with_its_reason(
    broker: str, env: dict[str, str], workers: Callable[[int], list[subprocess.Popen[bytes]]]
) -> None:
    queue = _queue(env)
    good = [
        queue.submit_documents({f"good-{i}.md": f"# Good {i}\n\nThe osprey {i} nests by the lake.\n".encode()})
        for i in range(3)
    ]
    # The poison: an upload whose documents are gone from Redis (evicted or expired) before a worker got to
    # it. Every run raises JobPayloadError, so it goes through its retries into the dead-letter queue.
    poison = queue.submit_documents({"lost.md": b"# Lost\n\nnever seen by a worker\n"})
    queue.client.delete(queue.keys.payload(poison))
    workers(1)

    def settled() -> bool:
        return all(queue.job(j).status.final for j in [*good, poison])

    _wait("the jobs to settle", settled)
    dead = queue.job(poison)
    assert dead.status == JobStatus.DEAD_LETTERED
    assert "JobPayloadError" in (dead.error or "") and "gone from Redis" in (dead.error or "")
    assert dead.attempts == 3 and dead.retries == 2  # max_retries=2: the first run and two retries
    assert [queue.job(j).status for j in good] == [JobStatus.DONE] * 3
    _, per_source = _store_ids(env["RAGSHIP_STORE"])
    assert set(per_source) == {f"good-{i}.md" for i in range(3)}

    # The job state says dead_lettered before the worker hands the message to the dead-letter queue.
    stats = _wait("the dead letter", lambda: (s := queue.stats()).dead_lettered == 1 and s)
    assert stats.jobs["dead_lettered"] == 1 and stats.jobs["done"] == 3
    status = subprocess.run(
        [RAGSHIP, "queue", "status", "--json"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert status.returncode == 0, status.stderr
    letters = json.loads(status.stdout)["dead_letters"]
    assert [d["job_id"] for d in letters] == [poison] and "gone from Redis" in letters[0]["reason"]
    shown = subprocess.run(
        [RAGSHIP, "queue", "job", poison], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert json.loads(shown.stdout)["status"] == "dead_lettered"


def test_broker_down_is_a_clear_error_and_recovers_without_restarts(
    env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    queue = _queue(env)
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nsome text\n")
    before = queue.submit_paths([doc])
    server = LocalRedis(load_settings().local_redis, home=home)
    assert server.stop()
    try:
        with pytest.raises(QueueUnavailableError, match="cannot be reached"):
            queue.submit_paths([doc])
        cli = subprocess.run(
            [RAGSHIP, "enqueue", str(doc)], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert cli.returncode == 2 and "cannot be reached" in cli.stderr
        down = subprocess.run(
            [RAGSHIP, "queue", "status"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert down.returncode == 1
    finally:
        server.start()  # same port, same append-only file
    after = queue.submit_paths([doc])  # the same client object: nothing restarted
    assert queue.job(before).status == JobStatus.QUEUED  # survived the restart (append-only file)
    assert queue.job(after).status == JobStatus.QUEUED
    assert queue.stats().waiting == 2


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_a_submission_the_broker_refuses_leaves_no_job_state(broker: str, env: dict[str, str]) -> None:
    import pika

    from ragship.queue.job_state import QueueConfigError

    queue = _queue(env)
    # The queue exists already as a classic queue (say, from an older deployment): its length can be read,
    # but declaring it as a quorum queue is refused, so the message fails after the job state was written.
    connection = pika.BlockingConnection(pika.URLParameters(env["RAGSHIP_QUEUE__URL"]))
    try:
        connection.channel().queue_declare(env["RAGSHIP_QUEUE__NAME"], durable=True)
    finally:
        connection.close()
    with pytest.raises(QueueConfigError, match="RAGSHIP_QUEUE__NAME"):
        queue.submit_documents({"a.md": b"# A\n\nnever queued\n"})
    assert queue.client.keys(f"{env['RAGSHIP_QUEUE__NAMESPACE']}:job:*") == []  # no state, no payload
    assert queue.jobs.counts_by_status()["queued"] == 0


def test_sigterm_lets_the_job_in_hand_finish(
    env: dict[str, str], workers: Callable[[int], list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    docs = _corpus(tmp_path, 30)
    queue = _queue(env)
    job_id = queue.submit_paths([docs])
    (master,) = workers(1)
    _wait("the job to start", lambda: queue.job(job_id).status == JobStatus.RUNNING, every_s=0.05)
    # A second job, which the worker takes in hand (prefetch: threads + 1) while the first runs.
    later = tmp_path / "later.md"
    later.write_text("# Later\n\nThe heron waits by the weir.\n")
    next_id = queue.submit_paths([later])
    _wait("the next job to be taken in hand", lambda: queue.stats(dead_letters=0).waiting == 0, 60, every_s=0.05)
    assert queue.job(job_id).status == JobStatus.RUNNING and queue.job(next_id).status == JobStatus.QUEUED
    os.kill(master.pid, signal.SIGTERM)
    assert master.wait(timeout=120) == 0
    job = queue.job(job_id)
    assert job.status == JobStatus.DONE and job.counts["added"] == 30 and job.redeliveries == 0
    # The job held but not started goes back on the queue for the next worker, untouched.
    assert queue.stats(dead_letters=0).waiting == 1
    waiting = queue.job(next_id)
    assert waiting.status == JobStatus.QUEUED and waiting.attempts == 0


def test_the_api_submits_jobs_and_reports_them_and_the_queue(
    env: dict[str, str], workers: Callable[[int], list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    import httpx

    from ragship.serving.launch import free_port

    metrics_port = free_port()
    env = {
        **env,
        "RAGSHIP_QUEUE__MAX_LENGTH": "2",
        "RAGSHIP_QUEUE__MAX_JOB_DOCUMENTS": "2",
        "RAGSHIP_QUEUE__RETRY_AFTER_S": "7",
    }

    birds = ["kingfisher", "heron", "osprey", "plover", "avocet", "curlew"]

    def doc(i: int) -> dict[str, str]:
        return {"source": f"api/note-{i}.md", "text": f"# Note {i}\n\nThe {birds[i]} dives at dawn.\n"}

    # Two API replicas (two `bentoml serve` processes) share one Redis: a job submitted to one is seen by both.
    with (
        _api(env, tmp_path, "serve-a") as url,
        _api(env, tmp_path, "serve-b") as url_b,  # its own BENTOML_HOME: its own metrics files
        httpx.Client(base_url=url, timeout=60) as http,
        httpx.Client(base_url=url_b, timeout=60) as replica,
    ):
        assert url != url_b
        started = time.time()
        first = http.post("/index/submit", json={"documents": [doc(1), doc(2)]})
        assert first.status_code == 202, first.text
        job_id = first.json()["job_id"]
        assert http.get("/index/status", params={"job_id": job_id}).json()["status"] == "queued"
        assert replica.get("/index/status", params={"job_id": job_id}).json()["status"] == "queued"
        too_large = http.post("/index/submit", json={"documents": [doc(3), doc(4), doc(5)]})
        assert too_large.status_code == 413 and "RAGSHIP_QUEUE__MAX_JOB_DOCUMENTS" in too_large.json()["error"]
        second = http.post("/index/submit", json={"documents": [doc(3)]})
        assert second.status_code == 202
        full = http.post("/index/submit", json={"documents": [doc(4)]})
        assert full.status_code == 503 and full.headers["Retry-After"] == "7", full.text
        assert http.get("/index/status", params={"job_id": "no-such-job"}).status_code == 404
        metrics = http.get("/metrics").text
        assert "ragship_queue_length 2.0" in metrics
        # the first job has waited since its submission, and no longer than this test has run
        oldest = _gauge(metrics, "ragship_queue_oldest_job_age_seconds")
        assert 0 < oldest < time.time() - started, oldest
        assert 'ragship_jobs{status="queued"} 2.0' in metrics
        assert 'ragship_index_submissions_total{outcome="full"} 1.0' in metrics

        workers_env = {**env, "RAGSHIP_WORKER__METRICS_PORT": str(metrics_port)}
        proc = subprocess.Popen(
            [RAGSHIP, "worker"],
            env=workers_env,
            stdout=(tmp_path / "api-worker.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def done() -> list[dict[str, Any]] | None:
                states = [
                    http.get("/index/status", params={"job_id": j}).json() for j in (job_id, second.json()["job_id"])
                ]
                return states if all(s["status"] == "done" for s in states) else None

            states = _wait("the API's jobs to be indexed", done)
            assert states[0]["counts"]["added"] == 2 and states[1]["counts"]["added"] == 1
            from_replica = replica.get("/index/status", params={"job_id": job_id}).json()
            assert from_replica["status"] == "done" and from_replica["counts"] == states[0]["counts"]
            drained = replica.get("/metrics").text
            assert "ragship_queue_length 0.0" in drained
            assert _gauge(drained, "ragship_queue_oldest_job_age_seconds") == 0.0
            worker_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            assert 'ragship_worker_jobs_total{status="done"} 2.0' in worker_metrics
            assert "ragship_job_latency_seconds_count 2.0" in worker_metrics
            assert http.post("/index/submit", json={"documents": [doc(5)]}).status_code == 202  # room again
            answer = http.post("/retrieve", json={"question": "plover", "top_k": 1}).json()
            assert answer["documents"][0]["source"] == "api/note-3.md"
        finally:
            stop_groups([proc])


def _gauge(metrics: str, name: str) -> float:
    """The value of the unlabelled metric ``name`` in a /metrics text."""
    return next(float(line.split()[1]) for line in metrics.splitlines() if line.startswith(f"{name} "))


def _answered(url: str, endpoint: str) -> float:
    """Requests the BentoML service at ``url`` answered with 200 on ``endpoint`` (its Prometheus counter)."""
    import httpx

    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("bentoml_service_request_total{") and f'endpoint="{endpoint}"' in line and '"200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_workers_embed_through_the_embedder_service(
    env: dict[str, str],
    workers: Callable[[int], list[subprocess.Popen[bytes]]],
    tmp_path: Path,
    tiny_cross_encoder: Path,
) -> None:
    """RAGSHIP_WORKER__EMBEDDER_URL: chunk vectors come from the Embedder service over HTTP, so GPU embedding
    scales apart from the workers; with the service gone, the job fails with a reason that names it. The
    same service scores the spec's rerank stage: served ranking equals the local cross-encoder's."""
    from bentoml import SyncHTTPClient

    from ragship.assembly import open_query_engine
    from ragship.components.remote import RemoteModels
    from ragship.serving.launch import bentoml_serve
    from ragship.spec import default_spec

    docs = _corpus(tmp_path, 6)
    queue = _queue(env)
    spec = default_spec(ranker_model=str(tiny_cross_encoder), top_k=3)
    env["RAGSHIP_SERVING__SPEC"] = str(spec.save(tmp_path / "spec.yaml"))
    served_env = {**env, "BENTOML_HOME": str(tmp_path / "bentoml-embedder")}
    log = tmp_path / "embedder.log"
    with bentoml_serve("ragship.serving.embedder:Embedder", env=served_env, log=log, cwd=REPO) as url:
        env["RAGSHIP_WORKER__EMBEDDER_URL"] = url
        workers(1)
        job_id = queue.submit_paths([docs])
        job = _wait("the job to finish", lambda: (j := queue.job(job_id)).status.final and j)
        assert job.status == JobStatus.DONE and job.counts["added"] == 6, job
        assert _answered(url, "/embed_documents") >= 1

        with SyncHTTPClient(url, timeout=60) as client:
            served = RemoteModels(rank=lambda q, texts, scale: client.rank(query=q, texts=texts, scale=scale))
            remote = open_query_engine(spec, env["RAGSHIP_STORE"], remote=served).retrieve("heron colony nests")
        local = open_query_engine(spec, env["RAGSHIP_STORE"]).retrieve("heron colony nests")
        assert len(remote) == 3 and [d.id for d in remote] == [d.id for d in local]
        assert [d.score for d in remote] == pytest.approx([d.score for d in local], abs=1e-5)
        assert _answered(url, "/rank") >= 1
    ids, per_source = _store_ids(env["RAGSHIP_STORE"])
    assert len(per_source) == 6 and len(ids) == len(set(ids))

    (docs / "late.md").write_text("# Late\n\nA note written after the Embedder service stopped.\n")
    late = queue.submit_paths([docs / "late.md"])
    job = _wait("the late job to settle", lambda: (j := queue.job(late)).status.final and j)
    assert job.status == JobStatus.DEAD_LETTERED, job
    assert "ModelServiceUnavailableError: The embedding service failed" in (job.error or ""), job
