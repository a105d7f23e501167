"""The time grid: steps tile the video, words and frames land in the step holding them."""

from __future__ import annotations

import numpy as np
import pytest

from chfen.embed.grid import TimedWord, TimeGrid, pool_frames, words_per_step


@pytest.mark.parametrize(
    ("duration", "hz", "steps"),
    [(9.467, 1.0, 10), (9.0, 1.0, 9), (9.0000001, 1.0, 9), (9.467, 2.0, 19), (0.2, 1.0, 1),
     (0.0, 1.0, 0), (10.0, 0.5, 5)],
)  # fmt: skip
def test_steps_cover_the_video(duration: float, hz: float, steps: int) -> None:
    grid = TimeGrid(hz, duration)
    assert grid.n_steps == steps
    if steps:
        assert grid.bounds(0)[0] == 0.0
        assert grid.bounds(steps - 1)[1] == pytest.approx(duration)
        for k in range(1, steps):
            assert grid.bounds(k)[0] == grid.bounds(k - 1)[1]


def test_step_of_edges() -> None:
    grid = TimeGrid(1.0, 9.5)
    assert grid.step_of(0.0) == 0
    assert grid.step_of(0.999) == 0
    assert grid.step_of(1.0) == 1
    assert grid.step_of(9.49) == 9
    assert grid.step_of(9.5) == 9  # the video's very end still belongs to the last step
    assert grid.step_of(9.6) is None
    assert grid.step_of(-0.5) is None
    assert TimeGrid(4.0, 2.0).step_of(0.3) == 1
    with pytest.raises(IndexError):
        grid.bounds(10)
    with pytest.raises(ValueError):
        TimeGrid(0.0, 1.0)


def test_words_land_in_the_step_of_their_middle() -> None:
    grid = TimeGrid(1.0, 5.0)
    words = [
        TimedWord("hello", 0.1, 0.5),
        TimedWord("there", 0.7, 1.2),  # middle 0.95: step 0
        TimedWord("big", 1.4, 2.2),  # middle 1.8: step 1
        TimedWord("world", 3.9, None),  # end unknown: by its start
        TimedWord("lost", None, None),  # no time at all: left out
        TimedWord("after", 6.0, 6.5),  # beyond the video: left out
        TimedWord("  ", 2.0, 2.1),  # empty
    ]
    assert words_per_step(grid, words) == {0: ["hello", "there"], 1: ["big"], 3: ["world"]}


def test_frames_pool_into_steps_and_empty_steps_are_absent() -> None:
    grid = TimeGrid(1.0, 4.2)
    times = np.array([0.25, 0.75, 1.5, 3.1, 3.9, 4.1, 5.0])
    frames = np.arange(len(times) * 2, dtype=np.float32).reshape(-1, 2)
    pooled = pool_frames(grid, frames, times)
    assert sorted(pooled) == [0, 1, 3, 4]  # step 2 has no frame; 5.0 s is past the end
    np.testing.assert_allclose(pooled[0][0], frames[:2].mean(0))
    assert pooled[0][1] == 2 and pooled[3][1] == 2 and pooled[4][1] == 1
    assert pool_frames(grid, np.zeros((0, 2)), np.zeros(0)) == {}
