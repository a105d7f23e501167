"""The real RAVDESS sample for the import tests (skips with the reason where it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingestkit import ravdess_folder


@pytest.fixture(scope="session")
def ravdess() -> Path:
    return ravdess_folder()
