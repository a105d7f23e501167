"""The project's single label set: Plutchik's eight primary emotions.

Every module that names an emotion (the demo site's ground truth, the Label Studio config, the
warehouse schemas, the classifier head) imports it from here, so the order and spelling agree.
"""

from __future__ import annotations

PLUTCHIK: tuple[str, ...] = (
    "joy",
    "trust",
    "fear",
    "surprise",
    "sadness",
    "disgust",
    "anger",
    "anticipation",
)

# Annotators may say the video evokes none of the eight; kept apart from PLUTCHIK so the
# classifier's classes stay the eight primaries.
NO_EMOTION = "no clear emotion"

EMOTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(PLUTCHIK)}
