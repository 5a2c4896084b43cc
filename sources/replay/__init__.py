"""Replay server: a local Electricity Maps v3 / WattTime v3 / Open-Meteo look-alike that answers
from recorded data, at a clock it is told, with fault knobs.

What it is for: tests of the real API clients and pipelines against realistic answers, ``gridflex
replay-server`` for trialling a zone's history "as if it were live" (``dagster dev`` pointed at it
through :meth:`ReplayServer.env`), and fault drills (outages, rate limits, late data, revisions).
It never touches the network: it listens on 127.0.0.1 (uvicorn in a daemon thread, a Starlette
app) and serves only what :class:`ReplayData` holds.

What it serves (shapes exactly as ``shared/design/sources.md`` documents them, so the project's
``ElectricityMapsClient``, ``WattTimeClient`` and ``OpenMeteoClient`` work unchanged, given
:attr:`ReplayServer.em_base_url`, :attr:`~ReplayServer.wt_base_url` and
:attr:`~ReplayServer.openmeteo_urls`):

- Electricity Maps: ``/v3/carbon-intensity/{latest,history,past-range,forecast}`` (header
  ``auth-token``; free tier: no past-range/forecast → 403; past-range ≤ 10 days → else 400;
  ``emissionFactorType`` defaults to lifecycle) — :mod:`sources.replay.em_routes`.
- WattTime: ``/login`` (HTTP Basic → bearer token valid ``token_ttl_s`` of wall time),
  ``/v3/{region-from-loc,historical,forecast,forecast/historical,signal-index}`` in
  lbs_co2_per_mwh, 5-minute points — :mod:`sources.replay.wt_routes`.
- Open-Meteo: ``/openmeteo/v1/forecast``, ``/openmeteo/archive/v1/archive``,
  ``/openmeteo/historical-forecast/v1/forecast`` — :mod:`sources.replay.om_routes`.
- Control: ``POST /replay/clock`` ``{"now": …}``, ``POST /replay/faults``, ``GET /replay/status``
  — :mod:`sources.replay.app`.

The clock: every answer is computed as of the replay clock (:meth:`ReplayServer.set_clock`,
``POST /replay/clock``, or ``follow_wall_clock=True``: start + wall time elapsed) and carries it
in the HTTP ``Date`` header. Actuals after the clock are never served; only forecasts look past it.

Forecasts are not the recorded future: the recorded weather is **reanalysis** (what happened) and
the carbon/MOER recordings are actuals, so every forecast is "recorded + a seeded error that grows
with lead time" (a random walk, ``sd ∝ sqrt(lead + 1)``; formulas in :mod:`sources.replay.noise`,
and stated in each Open-Meteo answer's ``replay`` object). The same seed and issue time always give
the same numbers. Electricity Maps also revises: the newest ``em_estimated_hours`` hours are served
estimated and perturbed, then with the recorded value and a later ``updatedAt``. Weather variables
the recording lacks are derived (``wind_speed_100m = wind_speed_10m / 0.72``, shortwave from a
clear-sky model × cloud cover) and the ``replay`` object says so.

The knobs (:class:`Faults`): per-API lag, null and dropped hours, random nulls, revision size,
archive lag, and bursts of statuses (with ``Retry-After``), timeouts and HTML pages, plus echoing
request headers in error bodies (to prove clients never leak secrets). The server never records
headers: :attr:`ReplayServer.requests` is ``(method, path, query)`` only.

Usage::

    data = ReplayData.from_files(em_csv=[...], weather={...}, watttime={...})
    with ReplayServer(data, clock="2022-04-01T00:05:00Z") as server:
        client = ElectricityMapsClient("replay-token", base_url=server.em_base_url)
        server.set_clock("2022-04-01T01:05:00Z")
"""

from sources.replay.data import ReplayData, read_moer_csv
from sources.replay.server import ReplayServer
from sources.replay.state import Faults

__all__ = ["Faults", "ReplayData", "ReplayServer", "read_moer_csv"]
