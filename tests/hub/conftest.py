"""A real hub under uvicorn on 127.0.0.1 (a free port), and helpers to talk to it."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from hub.app import create_app
from hub.store import init_hub
from tests.conftest import TIMEOUT_S  # the one timeout scale


@dataclass
class Hub:
    url: str
    data: Path
    admin: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT_S)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(TIMEOUT_S)


def start_hub(data: Path, admin: str) -> Hub:
    """Serve the hub in ``data`` on a socket bound before the server starts.

    The listening socket exists before uvicorn runs, so clients simply queue in its backlog
    until the app has started: no polling, no sleeps.
    """
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket says TCP, and without it keep-alive requests stall 40 ms (delayed ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(data), log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return Hub(f"http://127.0.0.1:{port}", data, admin, server, thread)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = tmp_path_factory.mktemp("hub")
    admin = init_hub(data, event_id=7, name="Cup final")
    h = start_hub(data, admin)
    yield h
    h.stop()


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def hub_on_both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub on SQLite, then one on PostgreSQL: a module that uses it (as its ``hub``) runs twice."""
    database = None if request.param == "sqlite" else request.getfixturevalue("pg_databases").new()
    data = tmp_path_factory.mktemp(f"hub-{request.param}")
    admin = init_hub(data, event_id=7, name="Cup final", database=database)
    h = start_hub(data, admin)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def admin(hub: Hub) -> Iterator[httpx.Client]:
    with hub.client(hub.admin) as c:
        yield c
