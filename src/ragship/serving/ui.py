"""The browser page: ask a question, read the answer with numbered citations, rate it."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


async def _page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


async def _config(request: Request) -> Response:
    # Set by the RAG service once it knows what it serves; the page adapts (API key field, streaming).
    return JSONResponse(getattr(request.app.state, "config", {}))


ui_app = Starlette(
    routes=[
        Route("/", _page, methods=["GET"]),
        Route("/ui/config.json", _config, methods=["GET"]),
        Mount("/ui/static", StaticFiles(directory=STATIC), name="static"),
    ]
)
