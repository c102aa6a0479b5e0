"""``/mcp``: the RAG API as a Model Context Protocol server (Streamable HTTP), with tools ``search`` and ``ask``.

Built on the official ``mcp`` SDK's :class:`~mcp.server.MCPServer`. The server is stateless and answers in
JSON (no session to keep, no stream to hold open), so any worker or replica answers any call, the way
the rest of the API scales. The API key guard in front of the service covers ``/mcp`` like every route;
MCP clients send the key as ``Authorization: Bearer ...``.
"""

# No `from __future__ import annotations`: the SDK reads the tools' signatures, whose bounds come from settings.
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field
from starlette.applications import Starlette

from ragship.pipelines.query import Source
from ragship.serving.http import public_error
from ragship.serving.served import ServedEngine
from ragship.settings import ServingSettings

INSTRUCTIONS = (
    "ragship answers questions from a private document collection. Use `search` to find passages "
    "(cite them by file), and `ask` for a written answer whose [n] markers point into its sources."
)


class FoundSource(BaseModel):
    """One passage of the collection."""

    citation: int = Field(description="The n of the [n] markers that cite this passage.")
    id: str = Field(description="Stable id of the passage.")
    file: str = Field(description="The document it comes from (path or URL).")
    title: str | None = Field(None, description="The document's title, when it has one.")
    snippet: str = Field(description="The start of the passage's text.")
    score: float | None = Field(None, description="Relevance score; higher is better, comparable within a call.")
    cited: bool = Field(description="Whether the answer cites it (always false for search).")


class SearchResult(BaseModel):
    """Passages ranked best first."""

    sources: list[FoundSource]


class AskResult(BaseModel):
    """An answer and the passages it cites."""

    answer: str = Field(description="The answer, with [n] markers citing `sources` by their `citation`.")
    sources: list[FoundSource]


def found(source: Source) -> FoundSource:
    """A retrieved chunk in the tools' words (``source`` is the file)."""
    data = source.model_dump()
    data["file"] = data.pop("source")
    return FoundSource.model_validate(data)


def mcp_app(served: ServedEngine, serving: ServingSettings) -> Starlette:
    """The ``/mcp`` ASGI app (mount it with ``@bentoml.asgi_app(app, path="/")``; its route is ``/mcp``)."""
    server: MCPServer = MCPServer(name="ragship", title="ragship document search", instructions=INSTRUCTIONS)
    question_type = Annotated[
        str,
        Field(
            min_length=1,
            max_length=serving.max_question_chars,
            description="The question or search terms, in words (e.g. 'How do I run the tests?').",
        ),
    ]
    top_k_type = Annotated[int, Field(ge=1, le=serving.max_top_k, description="How many passages to return.")]

    @server.tool(
        name="search",
        description=(
            "Search the document collection for passages about a question and return them ranked best first, "
            "each with its file, a snippet and a score. Nothing is written or summarised: use it to find where "
            "something is documented, or to read the evidence before answering yourself. Prefer `ask` for a "
            "ready answer with citations."
        ),
    )
    def search(question: question_type, top_k: top_k_type = 5) -> SearchResult:
        try:
            docs = served.get().retrieve(question, top_k=top_k)
        except Exception as e:
            raise ToolError(public_error(e)[1]) from e
        return SearchResult(sources=[found(Source.from_document(d, i)) for i, d in enumerate(docs, 1)])

    @server.tool(
        name="ask",
        description=(
            "Answer a question from the document collection. Returns an answer whose [n] markers cite the "
            "passages in `sources` (matched by their `citation` number), with each passage's file and snippet. "
            "Quote the [n] markers and name the files when you pass the answer on; if the answer is empty, the "
            "collection does not cover the question."
        ),
    )
    def ask(question: question_type) -> AskResult:
        try:
            answer = served.get().ask(question)
        except Exception as e:
            raise ToolError(public_error(e)[1]) from e
        return AskResult(answer=answer.answer, sources=[found(s) for s in answer.sources])

    return server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        max_request_body_size=serving.max_request_bytes,
        # The SDK's DNS-rebinding check allows only localhost Host headers; behind a Service or an ingress
        # the Host is the deployment's name. The API key guard in front is what keeps strangers out.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
