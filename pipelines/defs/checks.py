"""Asset checks on what the ingest stored: gaps, duplicates, value ranges, freshness.

They look at the most recent ``CHECK_DAYS`` of each series the fleet plans on, so a check's cost does
not grow with the warehouse."""

import dagster as dg

from pipelines.defs.ingest import carbon_intensity, inference_demand, prices, weather
from pipelines.defs.resources import FleetResource, WarehouseResource

CHECK_DAYS = 7
#: gCO2eq/kWh: the dirtiest grids are ~1,100 (lignite); above this a unit error is likelier than a reading
CARBON_MAX = 2000.0


def _gap_sql(table: str, key: str) -> str:
    return f"""
        with recent as (
            select {key} as k, ts from {table}
            where ts >= (select max(ts) from {table}) - interval {CHECK_DAYS} day and {key} in ?
        ), span as (select k, min(ts) lo, max(ts) hi, count(distinct ts) n from recent group by k)
        select k, lo, hi, n, (epoch(hi) - epoch(lo)) / 3600 + 1 - n as missing from span order by k"""


@dg.asset_check(
    asset=carbon_intensity,
    blocking=True,
    description=f"No missing hours in the last {CHECK_DAYS} days of each planned series",
)
def carbon_no_gaps(warehouse: WarehouseResource, fleet: FleetResource) -> dg.AssetCheckResult:
    f = fleet.load()
    series = sorted({f.carbon_series(s) for s in f.sites})
    df = warehouse.get().query(_gap_sql("staging.carbon_intensity", "series"), [series])
    absent = sorted(set(series) - set(df.k))
    missing = int(df.missing.sum()) if not df.empty else 0
    return dg.AssetCheckResult(
        passed=bool(missing == 0 and not absent),
        metadata={
            "missing_hours": missing,
            "absent_series": ", ".join(absent) or "none",
            "per_series": dg.MetadataValue.md(df.to_markdown(index=False)) if not df.empty else "-",
        },
    )


@dg.asset_check(
    asset=carbon_intensity,
    blocking=True,
    description=f"Every value is finite and within 0..{CARBON_MAX:.0f} gCO2eq/kWh; "
    "no (series, hour) stored twice by one source",
)
def carbon_values_and_duplicates(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    row = (
        warehouse.get()
        .query(
            f"""select count(*) n,
                   count(*) filter (where value < 0 or value > {CARBON_MAX} or isnan(value)) bad,
                   count(*) - count(distinct (series, ts, source)) dup,
                   min(value) lo, max(value) hi
            from staging.carbon_intensity"""
        )
        .iloc[0]
    )
    return dg.AssetCheckResult(
        passed=bool(row.bad == 0 and row.dup == 0),
        metadata={
            "rows": int(row.n),
            "out_of_range": int(row.bad),
            "duplicates": int(row.dup),
            "min": float(row.lo or 0),
            "max": float(row.hi or 0),
        },
    )


@dg.asset_check(asset=inference_demand, description="No gaps in recent inference demand per class")
def inference_no_gaps(warehouse: WarehouseResource, fleet: FleetResource) -> dg.AssetCheckResult:
    classes = sorted(fleet.load().classes)
    df = warehouse.get().query(_gap_sql("staging.load", "series"), [classes])
    missing = int(df.missing.sum()) if not df.empty else 0
    return dg.AssetCheckResult(
        passed=bool(missing == 0 and len(df) == len(classes)),
        metadata={"missing_hours": missing, "classes_found": len(df)},
    )


@dg.asset_check(
    asset=prices, description="Prices present for every planned zone, within -500..5000 /MWh"
)
def prices_sane(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    row = (
        warehouse.get()
        .query(
            "select count(*) n, count(*) filter (where price < -500 or price > 5000 or isnan(price)) bad "
            "from staging.prices"
        )
        .iloc[0]
    )
    return dg.AssetCheckResult(
        passed=bool(row.bad == 0 and row.n > 0),
        metadata={"rows": int(row.n), "out_of_range": int(row.bad)},
    )


@dg.asset_check(
    asset=weather, description="Weather forecasts were issued before the hours they describe"
)
def weather_forecasts_not_from_future(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    n = (
        warehouse.get()
        .query(
            "select count(*) n from staging.weather_forecast where issued_at > ts + interval 1 hour"
        )
        .n[0]
    )
    return dg.AssetCheckResult(passed=bool(n == 0), metadata={"rows_issued_after_target": int(n)})


INGEST_CHECKS = [
    carbon_no_gaps,
    carbon_values_and_duplicates,
    inference_no_gaps,
    prices_sane,
    weather_forecasts_not_from_future,
]
