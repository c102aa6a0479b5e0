"""A BentoML service that fails on purpose, so the HTTP edge is tested through a real server.

Served by ``test_serving_errors.py``; it loads no model and no store, so it starts in seconds.
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel

from ragship.errors import StoreUnavailableError
from ragship.serving.http import http_errors


class Reply(BaseModel):
    """What the routes would answer if they worked."""

    ok: bool


@bentoml.service(name="ragship-faulty")
class Faulty:
    """One route per kind of failure, and one that works."""

    @bentoml.api
    @http_errors
    def bug(self) -> Reply:
        """A library bug: a bare ValueError whose text must not reach the caller."""
        raise ValueError("secret internals: /srv/ragship/keys")

    @bentoml.api
    @http_errors
    def outage(self) -> Reply:
        """A domain error: its status, message and Retry-After reach the caller."""
        raise StoreUnavailableError("Cannot reach Elasticsearch at http://es:9200 (ConnectionError).")

    @bentoml.api
    @http_errors
    def fine(self) -> Reply:
        """The decorator leaves a working route alone."""
        return Reply(ok=True)
