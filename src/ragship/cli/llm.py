"""``ragship llm``: a local llama.cpp server (OpenAI-compatible) for the ``openai`` generator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ragship.cli.common import JsonOption, err, out, print_json
from ragship.errors import RagshipError

if TYPE_CHECKING:
    from ragship.local.llama_server import LocalLlama

llm_app = typer.Typer(
    help="Run a local OpenAI-compatible LLM server (llama.cpp; `make llm-server` builds it).", no_args_is_help=True
)

NameOption = Annotated[str, typer.Option("--name", help="Server name (several can run side by side).")]


def _local(name: str) -> LocalLlama:
    from ragship.local.llama_server import LocalLlama
    from ragship.settings import get_settings

    settings = get_settings()
    return LocalLlama(settings.local_llama, home=settings.home, name=name)


@llm_app.command("start")
def llm_start(
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = None,
    name: NameOption = "default",
    api_key_env: Annotated[
        str | None,
        typer.Option(help="Require a key: the one held by this environment variable (the spec's key variable)."),
    ] = None,
) -> None:
    """Start llama.cpp's OpenAI-compatible server on loopback, serving RAGSHIP_LOCAL_LLAMA__MODEL (the bundled
    SmolLM2-135M-Instruct by default), and print the base URL to pass as --openai-base-url."""
    from ragship.environment import env_secret

    api_key = None
    if api_key_env:
        api_key = env_secret(api_key_env)
        if not api_key:
            raise RagshipError(f"--api-key-env {api_key_env}: that environment variable is not set.")
    out.print(_local(name).start(port=port, api_key=api_key), markup=False, highlight=False)


@llm_app.command("stop")
def llm_stop(name: NameOption = "default") -> None:
    """Stop the local llama.cpp server."""
    err.print("stopped" if _local(name).stop() else "not running")


@llm_app.command("status")
def llm_status(name: NameOption = "default", as_json: JsonOption = False) -> None:
    """Whether the local llama.cpp server runs, and its base URL. Exit 1 when it does not run."""
    status = _local(name).status()
    if as_json:
        print_json(status.to_dict())
    elif status.running:
        out.print(f"running at {status.url} (pid {status.pid})", markup=False, highlight=False)
    else:
        out.print("not running", markup=False, highlight=False)
    if not status.running:
        raise typer.Exit(1)
