"""Run the replay app with uvicorn in a daemon thread, and drive it (clock, knobs) from Python.

Why a thread: tests and ``gridflex replay-server`` both need the server listening while their own
code goes on (pytest calling the real clients; the CLI waiting for Ctrl-C), and a real socket on
127.0.0.1 exercises exactly the transport the clients use in production.
"""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd

from sources.http import TimeLike
from sources.replay.data import ReplayData
from sources.replay.state import Faults, ReplayState


class ReplayServer:
    """A local Electricity Maps / WattTime / Open-Meteo look-alike answering from ``data``.

    Args:
        data: the recordings.
        clock: the replay's "now" (ISO string or timestamp; naive = UTC). Nothing after it is
            served as an actual.
        follow_wall_clock: the clock advances with wall time from :meth:`start` (and from each
            :meth:`set_clock`), for a user running a live pipeline against the replay.
        em_token, em_tier: the Electricity Maps token accepted and the plan (``"free"``: no
            past-range, no forecast).
        wt_username, wt_password, wt_subscription: WattTime credentials accepted; without a
            subscription only ``CAISO_NORTH`` answers data.
        token_ttl_s: WattTime bearer tokens expire after this many seconds of wall time.
        faults: the fault knobs (:class:`Faults`).
        seed: seeds every forecast error, estimate and random null.
        host, port: where to listen (``port=0``: any free port; see :attr:`url`).
    """

    def __init__(
        self,
        data: ReplayData,
        clock: TimeLike,
        *,
        em_token: str = "replay-token",
        em_tier: str = "paid",
        wt_username: str = "replay",
        wt_password: str = "replay-password",
        wt_subscription: bool = True,
        token_ttl_s: float = 1800.0,
        faults: Faults | None = None,
        seed: int = 0,
        port: int = 0,
        host: str = "127.0.0.1",
        follow_wall_clock: bool = False,
    ):
        self.data = data
        self.state = ReplayState(
            clock,
            faults=faults,
            follow_wall_clock=follow_wall_clock,
            em_token=em_token,
            em_tier=em_tier,
            wt_username=wt_username,
            wt_password=wt_password,
            wt_subscription=wt_subscription,
            token_ttl_s=token_ttl_s,
            seed=seed,
        )
        self.host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"ReplayServer({where}, clock={self.clock.isoformat()})"

    # -- lifecycle --
    def start(self) -> ReplayServer:
        """Listen in a daemon thread; returns once the socket is bound."""
        if self._thread is not None:
            raise RuntimeError("replay server already started")
        from sources.replay.app import create_app
        from sources.serving import serve

        served = serve(
            create_app(self.state, self.data),
            host=self.host,
            port=self._port,
            name="gridflex-replay",
            what="replay server",
            date_header=False,  # the app sets Date to the replay clock
        )
        self._server, self._thread, self._port = served, served.thread, served.port
        self.state.start_wall()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server, self._thread = None, None

    def __enter__(self) -> ReplayServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where --
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("replay server not started (call start())")
        return f"http://{self.host}:{self._port}"

    @property
    def em_base_url(self) -> str:
        return self.url

    @property
    def wt_base_url(self) -> str:
        return self.url

    @property
    def openmeteo_urls(self) -> dict[str, str]:
        """Keyword arguments for ``OpenMeteoClient(**urls)``."""
        return {
            "forecast_url": f"{self.url}/openmeteo/v1/forecast",
            "archive_url": f"{self.url}/openmeteo/archive/v1/archive",
            "historical_forecast_url": f"{self.url}/openmeteo/historical-forecast/v1/forecast",
        }

    def env(self) -> dict[str, str]:
        """Environment variables that point the clients' ``from_env()`` at this server."""
        om = self.openmeteo_urls
        return {
            "ELECTRICITYMAPS_BASE_URL": self.em_base_url,
            "ELECTRICITYMAPS_API_TOKEN": self.state.em_token,
            "WATTTIME_BASE_URL": self.wt_base_url,
            "WATTTIME_USERNAME": self.state.wt_username,
            "WATTTIME_PASSWORD": self.state.wt_password,
            "OPENMETEO_FORECAST_URL": om["forecast_url"],
            "OPENMETEO_ARCHIVE_URL": om["archive_url"],
            "OPENMETEO_HISTORICAL_FORECAST_URL": om["historical_forecast_url"],
        }

    # -- driving it --
    @property
    def clock(self) -> pd.Timestamp:
        return self.state.now()

    def set_clock(self, ts: TimeLike) -> pd.Timestamp:
        return self.state.set_clock(ts)

    @property
    def faults(self) -> Faults:
        return self.state.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the knobs (and re-arm their burst counters); thread-safe."""
        self.state.set_faults(faults)

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """``(method, path, query)`` of every API request so far (no headers: no secrets)."""
        return self.state.requests

    def clear_requests(self) -> None:
        self.state.clear_requests()

    def expire_tokens(self) -> None:
        """Invalidate every WattTime bearer token now (as if ``token_ttl_s`` had passed)."""
        self.state.expire_tokens()

    def status(self) -> dict[str, Any]:
        """What ``GET /replay/status`` answers."""
        from sources.replay.app import status_body

        return status_body(self.state, self.data)
