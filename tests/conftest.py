"""Shared pytest fixtures.

``shared_data`` points at ``../shared/data`` beside the checkout (real public data, never copied into the
repo). Tests that need it take the fixture and are skipped with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRIDFLEX_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "DATA.md").exists():
        pytest.skip(
            f"real data not found at {SHARED_DATA} (set GRIDFLEX_SHARED_DATA or put shared/ beside the repo)"
        )
    return SHARED_DATA
