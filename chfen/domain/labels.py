"""The project's single label set: Plutchik's eight primary emotions, plus "no clear emotion".

Every module that names an emotion (the demo site's ground truth, the Label Studio config, the
warehouse views, the classifier head) imports it from the domain layer, so the order and
spelling agree.
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

# Every label an annotator can choose (a vote's value), in display order.
CHOICES: tuple[str, ...] = (*PLUTCHIK, NO_EMOTION)

EMOTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(PLUTCHIK)}
