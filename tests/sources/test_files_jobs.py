"""Training-job queue import and validation."""

from __future__ import annotations

import pandas as pd
import pytest

from sources.frames import JOB_COLUMNS, SourceError
from sources.jobs import read_job_queue_csv, validate_jobs

HEADER = "job_id,power_mw,duration_h,release,deadline,value,eligible_sites"


def write(tmp_path, lines):
    p = tmp_path / "jobs.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


GOOD = [
    HEADER,
    "job-0001,8.5,4,2026-01-05T03:00Z,2026-01-05T20:00Z,9200,sanjose;frankfurt",
    "job-0002,2,8,2026-01-05 00:00,2026-01-05 07:00,100,london",
]


def test_reads(tmp_path):
    f, rep = read_job_queue_csv(write(tmp_path, GOOD))
    assert list(f.columns) == JOB_COLUMNS and len(f) == 2
    assert f["eligible_sites"].tolist() == [["sanjose", "frankfurt"], ["london"]]
    assert str(f["release"].dtype) == "datetime64[ns, UTC]" and f["duration_h"].dtype == "int64"
    assert f["deadline"].iloc[1] == pd.Timestamp(
        "2026-01-05 07:00", tz="UTC"
    )  # exactly fits: 8 h window
    assert rep.total == 0


@pytest.mark.parametrize(
    "line,field",
    [
        ("job-0003,0,4,2026-01-05 00:00,2026-01-06 00:00,1,london", "power_mw"),
        ("job-0003,1,-1,2026-01-05 00:00,2026-01-06 00:00,1,london", "duration_h"),
        ("job-0003,1,2.5,2026-01-05 00:00,2026-01-06 00:00,1,london", "duration_h"),
        ("job-0003,1,4,2026-01-05 00:00,2026-01-04 00:00,1,london", "deadline"),
        ("job-0003,1,9,2026-01-05 00:00,2026-01-05 07:00,1,london", "duration_h"),
        ("job-0003,1,4,2026-01-05 00:30,2026-01-06 00:00,1,london", "release"),
        ("job-0003,1,4,2026-01-05 00:00,2026-01-06 00:00,1,", "eligible_sites"),
        ("job-0003,x,4,2026-01-05 00:00,2026-01-06 00:00,1,london", "power_mw"),
        ("job-0003,1,4,2026-01-05 00:00,2026-01-06 00:00,-1,london", "value"),
        ("job-0003,1,4,someday,2026-01-06 00:00,1,london", "release"),
        ("job-0001,1,4,2026-01-05 00:00,2026-01-06 00:00,1,london", "job_id"),
    ],
)
def test_errors_name_job_and_field(tmp_path, line, field):
    with pytest.raises(SourceError) as e:
        read_job_queue_csv(write(tmp_path, [*GOOD, line]))
    msg = str(e.value)
    assert field in msg and ("job-0003" in msg or "job-0001" in msg) and e.value.row == 4


def test_missing_column(tmp_path):
    lines = [HEADER.replace(",value", ""), "job-1,1,1,2026-01-05 00:00,2026-01-05 00:00,london"]
    with pytest.raises(SourceError, match="value"):
        read_job_queue_csv(write(tmp_path, lines))


def test_validate_frame_and_known_sites():
    f = pd.DataFrame(
        {
            "job_id": ["a"],
            "power_mw": [3],
            "duration_h": [2],
            "release": [pd.Timestamp("2026-01-05", tz="UTC")],
            "deadline": [pd.Timestamp("2026-01-05 01:00", tz="UTC")],
            "value": [10.0],
            "eligible_sites": [["london"]],
        }
    )
    out = validate_jobs(f, known_sites=["london"])
    assert list(out.columns) == JOB_COLUMNS and out["duration_h"].iloc[0] == 2
    with pytest.raises(SourceError, match="unknown site"):
        validate_jobs(f, known_sites=["paris"])
    with pytest.raises(SourceError, match="missing column"):
        validate_jobs(f.drop(columns="eligible_sites"))


def test_header_only_is_an_empty_queue(tmp_path):
    f, rep = read_job_queue_csv(write(tmp_path, [HEADER]))
    assert len(f) == 0 and list(f.columns) == JOB_COLUMNS
    assert str(f["release"].dtype) == "datetime64[ns, UTC]"


def test_empty_file(tmp_path):
    p = tmp_path / "jobs.csv"
    p.write_text("", encoding="utf-8")
    with pytest.raises(SourceError, match="empty"):
        read_job_queue_csv(p)
