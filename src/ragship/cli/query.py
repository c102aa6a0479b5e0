"""``ragship ask`` and ``ragship demo``: answer questions from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ragship.cli.common import JsonOption, ModeOption, SpecOption, StoreOption, out, print_json
from ragship.errors import RagshipError

if TYPE_CHECKING:
    from ragship.pipelines.query import Answer

commands = typer.Typer()

DEMO_QUESTIONS = (
    "How do I run the tests?",
    "Which retrieval modes does ragship support?",
    "How do I use an OpenAI-compatible endpoint?",
)


@commands.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    spec: SpecOption = None,
    store: StoreOption = None,
    mode: ModeOption = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=1000, help="Sources to return.")] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only search these source files (repeatable).")
    ] = None,
    as_json: JsonOption = False,
    as_principal: Annotated[
        str | None,
        typer.Option("--as", help="Read only what this key's holder may (a keys-file name, or groups:finance,hr)."),
    ] = None,
) -> None:
    """Answer a question from the indexed documents, citing sources (as a local admin unless --as)."""
    from ragship.access.acting import scope_as
    from ragship.assembly import open_query_engine
    from ragship.settings import get_settings

    access = scope_as(as_principal, get_settings())
    engine = open_query_engine(spec, store, mode=mode)
    filters = {"field": "meta.source", "operator": "in", "value": source} if source else None
    answer = engine.ask(question, top_k=top_k, filters=filters, access=access)
    if as_json:
        print_json(answer.to_dict())
        return
    _print_answer(question, answer)


def _print_answer(question: str, answer: Answer) -> None:
    out.print(f"[bold]Q:[/bold] {question}")
    out.print(f"[bold]A:[/bold] {answer.answer}")
    for s in answer.sources:
        mark = "*" if s.cited else " "
        score = f"{s.score:.3f}" if s.score is not None else "-"
        out.print(f"  {mark}[{s.citation}] {s.source} (score {score}): [dim]{s.snippet[:160]}[/dim]")


@commands.command()
def demo(spec: SpecOption = None, store: StoreOption = None) -> None:
    """Answer a few sample questions about ragship's own docs (index them first)."""
    from ragship.assembly import open_query_engine

    engine = open_query_engine(spec, store)
    if engine.store.count_documents() == 0:
        raise RagshipError(f"The {engine.store.describe()} is empty; run `ragship index docs README.md` first.")
    for question in DEMO_QUESTIONS:
        _print_answer(question, engine.ask(question))
        out.print()
