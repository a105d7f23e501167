"""The Label Studio labeling config, generated from the one label set (`chfen.domain.labels`).

Annotators report their *own* response to the video ("How does this video make you feel?"):
one video-level emotion (Plutchik's eight or "no clear emotion"), its intensity 1–3, optional
timeline segments on the video with the same labels, and a free-text note. The transcript is
shown under the player.

The control names below are the contract with `labeling.push` (task data keys) and
`labeling.pull` (result `from_name`s); change them here only.
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import quoteattr

from chfen.domain.labels import CHOICES

# Object tags (what is shown) and their task-data keys.
VIDEO = "video"
TRANSCRIPT = "transcript"
TITLE = "title"
# Control tags (what annotators fill in): result `from_name`s in exports.
EMOTION = "emotion"
INTENSITY = "intensity"
SEGMENTS = "segments"
NOTE = "note"

INTENSITY_MAX = 3
QUESTION = "How does this video make you feel?"

# Every label an annotator can pick, in display order.
LABELS: tuple[str, ...] = CHOICES

# Display colours only (Plutchik's wheel); labels without one get grey.
_COLOURS = {
    "joy": "#f7d44a",
    "trust": "#8fcf5a",
    "fear": "#2e8b57",
    "surprise": "#3fa7d6",
    "sadness": "#3b5fc0",
    "disgust": "#9b59b6",
    "anger": "#e0413a",
    "anticipation": "#f39c3d",
}


def _label_tags(indent: str) -> str:
    return "\n".join(
        f"{indent}<Label value={quoteattr(name)} "
        f"background={quoteattr(_COLOURS.get(name, '#999'))}/>"
        for name in LABELS
    )


def label_config(fixed_framerate: float | None = None) -> str:
    """The labeling config XML.

    Timeline segments are exported in frame numbers at the `<Video frameRate>`. By default the
    frame rate comes from each task's `fps` (the video's own, so frames are real frames);
    `fixed_framerate` pins one rate for every task instead.
    """
    rate = f"{fixed_framerate:g}" if fixed_framerate else "$fps"
    choices = "\n".join(f"      <Choice value={quoteattr(name)}/>" for name in LABELS)
    return f"""<View>
  <Header value={quoteattr(QUESTION)}/>
  <Text name="{TITLE}" value="${TITLE}"/>
  <Video name="{VIDEO}" value="${VIDEO}" frameRate="{rate}" height="420"/>
  <TimelineLabels name="{SEGMENTS}" toName="{VIDEO}">
{_label_tags("    ")}
  </TimelineLabels>
  <View style="display: flex; gap: 2em; align-items: flex-start">
    <View>
      <Header value="Your overall feeling" size="5"/>
      <Choices name="{EMOTION}" toName="{VIDEO}" choice="single-radio" required="true"
               showInline="false">
{choices}
      </Choices>
    </View>
    <View>
      <Header value="How strongly? (1 mild, 2 clear, 3 strong)" size="5"/>
      <Rating name="{INTENSITY}" toName="{VIDEO}" maxRating="{INTENSITY_MAX}" icon="star"/>
      <Header value="Note (optional)" size="5"/>
      <TextArea name="{NOTE}" toName="{VIDEO}" rows="2" maxSubmissions="1" editable="true"/>
    </View>
  </View>
  <Header value="Transcript" size="5"/>
  <Text name="{TRANSCRIPT}" value="${TRANSCRIPT}"/>
</View>
"""


def config_fingerprint(xml: str) -> str:
    """A short hash of a config with whitespace normalised (to tell whether it changed)."""
    return hashlib.sha256(" ".join(xml.split()).encode()).hexdigest()[:16]
