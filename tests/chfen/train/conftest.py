"""Fixtures for the training tests over the synthetic warehouse of `trainkit`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from trainkit import Synthetic, small_train_config, write_synthetic_warehouse

from chfen.config import Settings, TrainConfig
from warehouse import Warehouse


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """The synthetic warehouse (written once per session; tests add runs to it)."""
    root = tmp_path_factory.mktemp("train") / "data"
    syn = write_synthetic_warehouse(root)
    syn.settings = Settings(data_root=str(root), train=small_train_config())
    return syn


@pytest.fixture
def synthetic_factory() -> Callable[..., Synthetic]:
    """`write_synthetic_warehouse(root, seed)`, for tests that need a warehouse of their own."""
    return write_synthetic_warehouse


@pytest.fixture
def settings(synthetic: Synthetic) -> Settings:
    assert synthetic.settings is not None
    return synthetic.settings


@pytest.fixture
def wh(synthetic: Synthetic) -> Warehouse:
    return Warehouse(synthetic.root)


@pytest.fixture
def train_config() -> Callable[..., TrainConfig]:
    """`small_train_config` as a fixture (test modules cannot import conftest)."""
    return small_train_config
