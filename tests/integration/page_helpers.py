"""The question page in headless Chromium: its real Starlette app on loopback, and layout checks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1200, "height": 900}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium_path() -> str:
    chromium = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
    assert chromium, "Debian chromium is needed for the browser test (make system-deps installs it)"
    return chromium


def assert_on_screen(page: Any, selector: str, why: str, min_width: float = 0) -> None:
    """``selector``'s first match is rendered, non-empty, and inside the viewport's width."""
    assert page.locator(selector).count(), f"nothing matches {selector} ({why})"
    box = page.locator(selector).first.bounding_box()
    viewport = page.viewport_size
    assert box is not None, f"{selector} is not rendered ({why})"
    assert box["width"] > min_width and box["height"] > 0, f"{selector} is empty: {box} ({why})"
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], f"{selector} {box} sticks out ({why})"


@contextmanager
def page_app_without_auth() -> Iterator[str]:
    """The page's real Starlette app (no RAG service behind it, so no API key) on a loopback port."""
    import uvicorn

    from ragship.serving.ui import ui_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(ui_app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
