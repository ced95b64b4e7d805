"""Start the what-if page: Solara's Starlette app under uvicorn, on one host and port.

This is what `solara run` does, without its development extras (auto restart, version
check, opening a browser) and with Solara's usage telemetry off: the page makes no
request anywhere but to the server that serves it (its assets come from the
`solara-assets` package).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from gtmsim.scenario import find_scenario, load_scenario

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class AppError(Exception):
    """The page cannot be served: the port is taken, the host cannot be bound."""


def check_address(host: str, port: int) -> None:
    """Refuse at once a port that is in use or a host that is not this machine's."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AppError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            raise AppError(f"cannot serve on {host}:{port}: {exc.strerror}; "
                           "choose another --port") from None


def _warm_up() -> None:
    """Import the page and start its worker processes while the server starts, so the
    first visitor's first answer does not wait for them."""
    try:
        from gtmsim.app import page

        page.RUNNER.executor().submit(int).result(timeout=120)
    except Exception:  # noqa: BLE001, S110 - the first visit starts them instead, and reports
        pass


def serve(scenario: str | Path = "baseline", *, host: str = DEFAULT_HOST,
          port: int = DEFAULT_PORT, overrides: Sequence[str] = (),
          save_dir: str | Path = ".", reps: int | None = None) -> None:
    """Serve the what-if page for `scenario` (the reference) until interrupted.

    Raises:
        ScenarioError: the scenario or an override is invalid (before anything starts).
        AppError: the address cannot be served.
    """
    load_scenario(scenario, list(overrides) or None)  # every mistake now, not in the page
    check_address(host, port)
    os.environ["GTMSIM_APP_SCENARIO"] = str(find_scenario(scenario).resolve())
    os.environ["GTMSIM_APP_OVERRIDES"] = json.dumps(list(overrides))
    os.environ["GTMSIM_APP_SAVE_DIR"] = str(Path(save_dir).resolve())
    if reps is not None:
        os.environ["GTMSIM_APP_REPS"] = str(reps)
    os.environ["SOLARA_APP"] = "gtmsim.app.page"
    os.environ["SERVER_NAME"] = host
    os.environ["SERVER_PORT"] = str(port)
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    import uvicorn
    from solara.server import settings

    settings.telemetry.mixpanel_enable = False
    settings.main.mode = "production"
    config = uvicorn.Config("solara.server.starlette:app", host=host, port=port,
                            log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5)  # open pages do not hold a stop
    server = uvicorn.Server(config)
    threading.Thread(target=_warm_up, name="gtmsim-warm-up", daemon=True).start()
    try:
        server.run()
    finally:
        page = sys.modules.get("gtmsim.app.page")
        if page is not None:
            page.RUNNER.close()
