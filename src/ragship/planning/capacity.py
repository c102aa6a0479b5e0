"""Capacity planning: from per-replica capacities measured on the target hardware to replica counts.

The benchmarks (``make bench-serving``, ``make bench-queue``) write what one replica of each service
can do into a capacity file; :func:`plan` turns a peak load and a latency goal into replicas, the
autoscalers' targets and the API's concurrency limit.

The model of one query replica: an M/M/c queue. At saturation a replica completes ``max_rps``
requests per second while each takes ``mean_ms`` alone, so by Little's law it works on
``c = max_rps * mean_ms`` requests at once (rounded down); it behaves like ``c`` servers of rate ``max_rps / c``.
At a per-replica arrival rate λ, Erlang's C formula gives the chance a request waits, and the wait
is exponential beyond that: ``P(wait > t) = C * exp(-(max_rps - λ) t)``. The p95 latency is
predicted as the lone request's p95 plus the wait's p95, which errs on the safe side (the two rarely
peak together). The utilisation target (``--utilisation``) is the latency-versus-cost knob: lower
means more idle replicas and shorter queues.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragship.errors import InvalidRequestError
from ragship.settings import get_settings

TAIL = 0.05  # the planned percentile is the 95th
SPARE_REPLICAS = 1  # headroom above the peak for a replica lost to a node drain or a rolling update
DEFAULT_UTILISATION = 0.7  # a replica planned at 70% of its saturation throughput
DEFAULT_MIN_REPLICAS = 2  # the query path stays up through one pod's loss
WORKER_REACTION_S = 60  # KEDA adds a worker per this many seconds of queued work per worker
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class ServiceProfile:
    """What one replica of a request/response service does, measured on the target hardware.

    :param mean_ms: Mean latency of a request alone (one client).
    :param p95_ms: 95th percentile latency of a request alone.
    :param max_rps: Requests per second at saturation (many concurrent clients).
    """

    mean_ms: float
    p95_ms: float
    max_rps: float

    def __post_init__(self) -> None:
        if self.mean_ms <= 0 or self.p95_ms <= 0 or self.max_rps <= 0:
            raise ValueError(f"a service profile needs positive figures, got {self}")

    @property
    def servers(self) -> int:
        """Requests a replica effectively works on at once (Little's law at saturation), at least 1.

        Rounded down: a fraction of a server serves nobody in parallel, and fewer servers predict more
        waiting, the safe side (rounding 1.6 up to 2 halved the predicted p95 at 70% load on 2 cores).
        """
        return max(1, math.floor(self.max_rps * self.mean_ms / 1000))

    def waiting_chance(self, rps: float) -> float:
        """Erlang C: the chance that a request arriving at ``rps`` waits for a free server."""
        c, offered = self.servers, rps * self.servers / self.max_rps
        if offered >= c:
            return 1.0
        # Erlang B by its stable recurrence, then C from B.
        blocking = 1.0
        for k in range(1, c + 1):
            blocking = offered * blocking / (k + offered * blocking)
        utilisation = offered / c
        return blocking / (1 - utilisation + utilisation * blocking)

    def mean_wait_ms(self, rps: float) -> float:
        """Mean queueing delay at ``rps`` (infinite at or beyond saturation)."""
        if rps >= self.max_rps:
            return math.inf
        return 1000 * self.waiting_chance(rps) / (self.max_rps - rps)

    def predicted_p95_ms(self, rps: float) -> float:
        """Predicted 95th percentile latency at ``rps`` requests per second on one replica."""
        if rps >= self.max_rps:
            return math.inf
        waits = self.waiting_chance(rps)
        wait_p95 = 1000 * math.log(waits / TAIL) / (self.max_rps - rps) if waits > TAIL else 0.0
        return self.p95_ms + wait_p95


@dataclass(frozen=True)
class Capacity:
    """Per-replica capacities of the deployment's parts (what the capacity file holds).

    :param api: The RAG API's ``/ask`` (its Embedder calls included).
    :param embedder_queries_per_s: Query texts one Embedder replica encodes per second, batched.
    :param worker_docs_per_s: Documents one indexing worker indexes per second.
    :param hardware: Where it was measured (free text: CPU, GPU).
    """

    api: ServiceProfile
    embedder_queries_per_s: float | None = None
    worker_docs_per_s: float | None = None
    hardware: str = ""

    @classmethod
    def load(cls, path: Path) -> Capacity:
        """Read a capacity file.

        :raises InvalidRequestError: when it is missing or lacks the API's profile.
        """
        if not path.is_file():
            raise InvalidRequestError(
                f"No capacity file at {path}: run `make bench-serving` (and `make bench-queue` for workers) on the "
                "target hardware first, or pass --capacity FILE."
            )
        try:
            raw = json.loads(path.read_text())
            api = ServiceProfile(**raw["api"])
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidRequestError(
                f"{path}: the capacity file needs an 'api' object with mean_ms, p95_ms and max_rps ({e}); "
                "write it again with `make bench-serving`."
            ) from e
        return cls(
            api=api,
            embedder_queries_per_s=raw.get("embedder_queries_per_s"),
            worker_docs_per_s=raw.get("worker_docs_per_s"),
            hardware=str(raw.get("hardware", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what :meth:`load` reads)."""
        return asdict(self)


#: Shipped with the package: the capacities recorded on ragship's 2-core CPU benchmark machine, so a first plan
#: needs no benchmark (``ragship plan`` says it is not the user's hardware).
REFERENCE_CAPACITY_FILE = Path(__file__).with_name("reference-capacity-2core-cpu.json")


def default_capacity_file() -> Path:
    """Where the benchmarks write the capacity figures and ``ragship plan`` reads them: under ragship's home."""
    return get_settings().home / "capacity.json"


def update_capacity_file(path: Path, **figures: Any) -> None:
    """Merge measured figures into the capacity file (each benchmark writes its own keys)."""
    current = json.loads(path.read_text()) if path.is_file() else {}
    current.update(figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")


@dataclass(frozen=True)
class Load:
    """What the deployment must carry.

    :param peak_qps: Questions per second at the busiest time.
    :param p95_ms: Latency goal of ``/ask`` at that peak (95th percentile).
    :param docs: Documents in the store (sizes Elasticsearch).
    :param docs_per_day: New or changed documents per day (sizes the indexing workers).
    :param ingest_hours: How long a day's documents may take to index.
    :param docs_per_job: Documents per queued job (``ragship enqueue --per-job``).
    """

    peak_qps: float
    p95_ms: float
    docs: int = 0
    docs_per_day: int = 0
    ingest_hours: float = 1.0
    docs_per_job: int = 10


@dataclass
class ServicePlan:
    """Replicas and autoscaler targets of one service."""

    min_replicas: int
    max_replicas: int
    target_cpu_percent: int
    target_inflight: float | None = None
    max_concurrency: int | None = None
    predicted_p95_ms: float | None = None


@dataclass
class WorkerPlan:
    """The KEDA scaling of the indexing workers."""

    min_replicas: int
    max_replicas: int
    list_length: int


@dataclass
class Plan:
    """A deployment sized for a load."""

    api: ServicePlan
    embedder: ServicePlan | None
    worker: WorkerPlan | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return asdict(self)


def _replicas_for_latency(profile: ServiceProfile, load: Load, utilisation: float) -> int:
    """Fewest replicas whose predicted p95 meets the goal with each replica at most ``utilisation`` busy."""
    replicas = max(1, math.ceil(load.peak_qps / (utilisation * profile.max_rps)))
    while profile.predicted_p95_ms(load.peak_qps / replicas) > load.p95_ms:
        replicas += 1
    return replicas


def plan(
    capacity: Capacity,
    load: Load,
    utilisation: float = DEFAULT_UTILISATION,
    min_replicas: int = DEFAULT_MIN_REPLICAS,
) -> Plan:
    """Size the API, the Embedder and the indexing workers for ``load``.

    :param utilisation: Highest planned share of a replica's saturation throughput (0-1).
    :param min_replicas: Replicas the API and Embedder keep when idle.
    :raises InvalidRequestError: when the goal cannot be met by adding replicas.
    """
    if not 0 < utilisation < 1:
        raise InvalidRequestError(f"--utilisation must be between 0 and 1 (exclusive), got {utilisation}.")
    api = capacity.api
    if api.p95_ms >= load.p95_ms:
        raise InvalidRequestError(
            f"A request alone already takes {api.p95_ms:.0f} ms at p95 on the measured hardware "
            f"({capacity.hardware or 'see the capacity file'}), over the {load.p95_ms:.0f} ms goal; more replicas "
            "cannot help. Measure faster hardware (run `make bench-serving` on a GPU node and pass its file with "
            "--capacity), use a smaller model, or loosen --p95-ms."
        )
    peak = _replicas_for_latency(api, load, utilisation)
    per_replica = load.peak_qps / peak
    target_rps = utilisation * api.max_rps
    inflight = target_rps * (api.mean_ms + api.mean_wait_ms(target_rps)) / 1000  # Little's law at the target
    # Beyond this many in flight, a new request would wait past the goal: refuse it fast (503) instead.
    max_concurrency = api.servers + max(0, math.floor((load.p95_ms - api.mean_ms) / 1000 * api.max_rps))
    api_plan = ServicePlan(
        min_replicas=min(min_replicas, peak + SPARE_REPLICAS),
        max_replicas=peak + SPARE_REPLICAS,
        target_cpu_percent=round(100 * utilisation),
        target_inflight=round(inflight, 2),
        max_concurrency=max_concurrency,
        predicted_p95_ms=round(api.predicted_p95_ms(per_replica), 1),
    )
    embedder_plan = None
    if capacity.embedder_queries_per_s:
        needed = max(1, math.ceil(load.peak_qps / (utilisation * capacity.embedder_queries_per_s)))
        embedder_plan = ServicePlan(
            min_replicas=min(min_replicas, needed + SPARE_REPLICAS),
            max_replicas=needed + SPARE_REPLICAS,
            target_cpu_percent=round(100 * utilisation),
        )
    worker_plan = None
    notes: list[str] = []
    if load.docs_per_day and capacity.worker_docs_per_s:
        rate = load.docs_per_day / (load.ingest_hours * 3600)
        worker_plan = WorkerPlan(
            min_replicas=0,
            max_replicas=max(1, math.ceil(rate / capacity.worker_docs_per_s)),
            list_length=max(1, math.ceil(capacity.worker_docs_per_s * WORKER_REACTION_S / load.docs_per_job)),
        )
    elif load.docs_per_day:
        notes.append("No worker throughput in the capacity file (run `make bench-queue`): workers not sized.")
    return Plan(api=api_plan, embedder=embedder_plan, worker=worker_plan, notes=notes)
