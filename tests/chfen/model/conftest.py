"""Small random batches for the CHFEN model tests (no warehouse, no encoders)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from chfen.model import CAPTION, CHFEN, CHFENConfig, ModalityBatch
from chfen.model.inputs import is_global

# Different sizes per modality: encoders differ, the network takes each size as an argument.
DIMS = {
    "title": 12,
    "audio": 10,
    "scene": 16,
    "face": 14,
    "text": 12,
    "audio_seq": 9,
    CAPTION: 11,
}
HIDDEN = 32


def random_batch(
    batch: int = 3, steps: int = 6, seed: int = 0, dims: dict[str, int] | None = None
) -> ModalityBatch:
    """Every modality present everywhere, one-second grid, random face density."""
    g = torch.Generator().manual_seed(seed)
    features, masks = {}, {}
    for m, d in (dims or DIMS).items():
        shape = (batch,) if is_global(m) else (batch, steps)
        features[m] = torch.randn(*shape, d, generator=g)
        masks[m] = torch.ones(shape, dtype=torch.bool)
    times = (torch.arange(steps, dtype=torch.float32) + 0.5).expand(batch, steps).clone()
    density = torch.rand(batch, steps, generator=g)
    return ModalityBatch(features, masks, times, density, [f"v{i}" for i in range(batch)])


def build(seed: int = 0, **switches: object) -> CHFEN:
    """A small CHFEN in eval mode (no dropout), deterministic weights."""
    torch.manual_seed(seed)
    cfg = CHFENConfig(hidden_dim=HIDDEN, heads=4, **switches)  # type: ignore[arg-type]
    return CHFEN(DIMS, cfg).eval()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny networks run fastest single-threaded (much faster on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def dims() -> dict[str, int]:
    return dict(DIMS)


@pytest.fixture
def hidden() -> int:
    return HIDDEN


@pytest.fixture
def make_batch() -> Callable[..., ModalityBatch]:
    return random_batch


@pytest.fixture
def make_model() -> Callable[..., CHFEN]:
    return build
