"""Data-centre telemetry and AI-cluster trace import."""

from __future__ import annotations

import pandas as pd
import pytest

from sources.frames import LOAD_COLUMNS, SourceError
from sources.load import read_alibaba_trace, read_helios, read_telemetry_csv


def write(tmp_path, lines, name="t.csv", trailing=True):
    p = tmp_path / name
    p.write_text("\n".join(lines) + ("\n" if trailing else ""), encoding="utf-8")
    return p


def samples(start, n, minutes, value=lambda i: i):
    ts = pd.date_range(start, periods=n, freq=f"{minutes}min")
    return [(t, value(i)) for i, t in enumerate(ts)]


def test_mean_power(tmp_path):
    lines = ["timestamp,value"] + [
        f"{t:%Y-%m-%dT%H:%M:%SZ},{v}" for t, v in samples("2026-01-01", 8, 15)
    ]
    f, rep = read_telemetry_csv(
        write(tmp_path, lines), "sanjose", series="it_load", unit="MW", agg="mean"
    )
    assert list(f.columns) == LOAD_COLUMNS and rep.total == 0
    assert (
        f["value"].tolist() == [1.5, 5.5]
        and set(f["unit"]) == {"MW"}
        and set(f["site"]) == {"sanjose"}
    )
    assert f["ts"].tolist() == list(pd.date_range("2026-01-01", periods=2, freq="h", tz="UTC"))
    assert str(f["ts"].dtype) == "datetime64[ns, UTC]"


def test_sum_requests_per_class_with_offset(tmp_path):
    lines = ["time,cls,n"]
    for t, v in samples("2026-01-01 01:00", 12, 10, lambda i: 10):
        lines.append(f"{t:%Y-%m-%dT%H:%M}+01:00,chat,{v}")
        lines.append(f"{t:%Y-%m-%dT%H:%M}+01:00,code,{2 * v}")
    f, rep = read_telemetry_csv(
        write(tmp_path, lines),
        "london",
        series_col="cls",
        value_col="n",
        unit="requests/h",
        agg="sum",
        time_col="time",
    )
    assert f.groupby("series")["value"].apply(list).to_dict() == {
        "chat": [60, 60],
        "code": [120, 120],
    }
    assert f["ts"].min() == pd.Timestamp("2026-01-01 00:00", tz="UTC")


def test_partial_and_missing_hours(tmp_path):
    s = samples("2026-01-01", 24, 15)
    s = s[:5] + s[8:]  # hour 1 has 1 sample of 4; no hour missing entirely
    s = [
        x
        for x in s
        if not (pd.Timestamp("2026-01-01 03:00") <= x[0] < pd.Timestamp("2026-01-01 04:00"))
    ]
    lines = ["timestamp,value"] + [f"{t:%Y-%m-%d %H:%M},{v}" for t, v in s]
    f, rep = read_telemetry_csv(
        write(tmp_path, lines), "x", series="a", agg="sum", unit="requests/h"
    )
    assert rep.counts == {"partial_hours": 1, "missing_hours": 1}
    assert len(f) == 5


def test_local_tz(tmp_path):
    lines = ["timestamp,value", "2026-07-01 10:00,5"]
    f, _ = read_telemetry_csv(write(tmp_path, lines), "x", series="a", tz="Europe/Berlin")
    assert f["ts"].iloc[0] == pd.Timestamp("2026-07-01 08:00", tz="UTC")
    lines = ["timestamp,value", "2026-10-25 02:30,5"]
    with pytest.raises(SourceError, match="ambiguous"):
        read_telemetry_csv(write(tmp_path, lines), "x", series="a", tz="Europe/Berlin")


def test_duplicates(tmp_path):
    lines = ["timestamp,value", "2026-01-01 00:00,1", "2026-01-01 00:00,1", "2026-01-01 01:00,2"]
    f, rep = read_telemetry_csv(write(tmp_path, lines), "x", series="a")
    assert rep.counts == {"duplicate_dropped": 1} and f["value"].tolist() == [1, 2]
    lines[2] = "2026-01-01 00:00,3"
    with pytest.raises(SourceError, match="conflicting"):
        read_telemetry_csv(write(tmp_path, lines), "x", series="a")


@pytest.mark.parametrize(
    "lines,match,row",
    [
        ([], "empty", None),
        (["timestamp,value"], "header only", None),
        (["ts,value", "2026-01-01 00:00,1"], "timestamp", 1),
        (["timestamp,watts", "2026-01-01 00:00,1"], "value", 1),
        (["timestamp,value", "2026-01-01 00:00,1", "2026-01-01 01:00,-2"], "negative", 3),
        (["timestamp,value", "2026-01-01 00:00,abc"], "non-numeric", 2),
        (["timestamp,value", "noon,1"], "unparseable", 2),
        (["timestamp,value", "2026-01-01 00:00,1", "2026-01-01 01:00"], "truncated", 3),
    ],
)
def test_errors(tmp_path, lines, match, row):
    with pytest.raises(SourceError, match=match) as e:
        read_telemetry_csv(write(tmp_path, lines, trailing=False), "x", series="a")
    assert e.value.row == row


def test_needs_one_series_spec(tmp_path):
    p = write(tmp_path, ["timestamp,value", "2026-01-01 00:00,1"])
    with pytest.raises(ValueError):
        read_telemetry_csv(p, "x")


def test_helios_small(tmp_path):
    header = (
        "time,submit_job_all,start_job_all,end_job_all,submit_gpu_job,start_gpu_job,end_gpu_job,"
        "submit_gpu_num,start_gpu_num,end_gpu_num"
    )
    lines = [header]
    for d, val in (("2020-04-01", 2), ("2020-04-02", 0)):
        for t, _ in samples(d, 144, 10):
            lines.append(f"{t:%Y-%m-%d %H:%M:%S},1,1,1,1,1,1,{val},1,1")
    f, rep = read_helios(write(tmp_path, lines))
    assert rep.counts == {"trailing_zero_day_dropped": 1}
    assert len(f) == 24 and (f["value"] == 12).all() and set(f["unit"]) == {"gpus"}
    assert f["ts"].iloc[0] == pd.Timestamp("2020-03-31 16:00", tz="UTC")  # Asia/Shanghai = UTC+8


def test_alibaba_small(tmp_path):
    lines = [
        "gmt_create,predict_type,predict_status,exec_time_seconds",
        "2024-11-15 16:57:50,TXT_2_IMG,SUCCEED,32.0",
        "2024-11-15 16:58:00,TXT_2_IMG,FAILED,1.0",
        "2024-11-15 19:01:00,IMG_2_IMG,SUCCEED,3.0",
    ]
    f, _ = read_alibaba_trace(write(tmp_path, lines), site="hz")
    assert f[f.series == "IMG_2_IMG"]["value"].tolist() == [0, 0, 0, 1] and set(f["site"]) == {"hz"}
    assert f.groupby("series").size().tolist() == [4, 4]
    assert f[f.series == "TXT_2_IMG"]["value"].tolist() == [2, 0, 0, 0]
    g, _ = read_alibaba_trace(write(tmp_path, lines), statuses=("SUCCEED",))
    assert g[g.series == "TXT_2_IMG"]["value"].sum() == 1


@pytest.mark.shared_data
def test_shared_helios(shared_data):
    f, rep = read_helios(shared_data / "load" / "helios-venus" / "cluster_throughput.csv")
    assert rep.counts == {"trailing_zero_day_dropped": 1}
    assert len(f) == 180 * 24 and f["ts"].is_unique and f["ts"].is_monotonic_increasing
    assert f["value"].max() == 40237
    assert f["ts"].max() == pd.Timestamp("2020-09-27 15:00", tz="UTC")


@pytest.mark.shared_data
def test_shared_alibaba(shared_data):
    f, rep = read_alibaba_trace(shared_data / "load" / "alibaba-genai" / "lora_request_trace.csv")
    sizes = f.groupby("series").size()
    assert set(sizes.index) == {"TXT_2_IMG", "IMG_2_IMG", "INPAINTING"} and (sizes == 554).all()
    assert f["value"].sum() == 26823 and rep.total == 0
