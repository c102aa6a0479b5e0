"""The ``ragship`` command line: thin over the library.

One module per command group; this module only wires them into the root app. ``main`` is the
console script (``ragship = "ragship.cli:main"``).
"""

from __future__ import annotations

import typer

from ragship.cli import (
    config,
    data,
    es,
    evaluate,
    feedback,
    index,
    keys,
    llm,
    plan,
    query,
    queue,
    reindex,
    shadow,
    spec,
)
from ragship.cli.common import run_app

__all__ = ["app", "main"]

# Pretty tracebacks would print local variables, which can hold secrets.
app = typer.Typer(
    help="ragship: RAG from notebook prototype to production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Top-level commands, in the order `ragship --help` lists them. Copied rather than `add_typer(...)` without
# a name: typer merges unnamed sub-apps only from 0.15, and the project supports typer>=0.12.
for commands in (index.commands, queue.commands, reindex.commands, query.commands, evaluate.commands, plan.commands):
    app.registered_commands.extend(commands.registered_commands)

app.add_typer(spec.spec_app, name="spec")
app.add_typer(config.config_app, name="config")
app.add_typer(es.es_app, name="es")
app.add_typer(queue.queue_app, name="queue")
app.add_typer(llm.llm_app, name="llm")
app.add_typer(evaluate.mlflow_app, name="mlflow")
app.add_typer(data.data_app, name="data")
app.add_typer(feedback.feedback_app, name="feedback")
app.add_typer(reindex.schedule_app, name="schedule")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(shadow.shadow_app, name="shadow")


def main() -> None:
    """Console entry point: known errors become one line on stderr and exit code 2."""
    run_app(app)
