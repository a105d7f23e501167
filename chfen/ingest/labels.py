"""The labels of an imported dataset: the two CSV shapes, label maps, and file-name presets.

Two shapes of labels file (UTF-8 CSV with a header; column names can be changed):

- one label per file: `file,label[,uploader,title,text]`; the label is the dataset's own, and
  reaches Label Studio as the vote of one user named after the dataset;
- one row per rating: `file,rater,label[,intensity]`; each rater becomes a Label Studio user.

`file` is a path relative to the imported folder; `intensity` is 1-3 or a word (low, normal,
medium, high, strong). A label map turns the dataset's words into
ours (`chfen.domain.labels.CHOICES`: Plutchik's eight or "no clear emotion"); our own words
need no map. Presets read the labels from the file names instead (`PRESETS`):

RAVDESS (Livingstone & Russo 2018, https://doi.org/10.1371/journal.pone.0196391): names are
`modality-channel-emotion-intensity-statement-repetition-actor`, e.g. `03-01-05-02-01-01-01.wav`;
emotion 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised;
intensity 01 normal, 02 strong. Our mapping: neutral and calm -> "no clear emotion" (neither is
one of Plutchik's eight; calm is a low-arousal state, not an evoked emotion), happy -> joy,
sad -> sadness, angry -> anger, fearful -> fear, disgust -> disgust, surprised -> surprise
(RAVDESS has no trust or anticipation). Intensity normal -> 2, strong -> 3, and 1 for the
"no clear emotion" labels (as annotators rate them). The actor is the uploader (the split by
uploader then keeps each actor on one side).

CREMA-D (Cao et al. 2014, https://doi.org/10.1109/TAFFC.2014.2336244): names are
`actor_sentence_emotion_level`, e.g. `1001_DFA_ANG_XX.wav`; emotion ANG anger, DIS disgust,
FEA fear, HAP -> joy, NEU -> "no clear emotion", SAD sadness; level LO 1, MD 2, HI 3, XX
(unspecified) none. The label is the one the actor was asked to act (CREMA-D's crowd ratings
are a separate file: import them as a ratings CSV).

Every problem is a `LabelsError` naming the labels file, the row and the file; nothing is
written before all rows passed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from chfen.domain.labels import CHOICES, NO_EMOTION

ONE_PER_FILE = "one-per-file"
RATINGS = "ratings"


class LabelsError(ValueError):
    """A labels file, label map or preset that cannot be imported; nothing was written."""


@dataclass(frozen=True)
class LabelRow:
    """One vote of the dataset on one file, already mapped to our label set."""

    file: str  # relative to the imported folder, as written in the labels file (posix)
    label: str  # one of CHOICES
    rater: str | None = None  # None: the dataset's own label (one per file)
    intensity: int | None = None  # 1-3, as Label Studio's intensity rating
    uploader: str | None = None
    title: str | None = None
    text: str | None = None
    where: str = ""  # "labels.csv row 4", for messages
    original: str = ""  # the dataset's word, before the map


@dataclass(frozen=True)
class Columns:
    """The labels file's column names (flags or config can rename them)."""

    file: str = "file"
    label: str = "label"
    rater: str = "rater"
    intensity: str = "intensity"
    uploader: str = "uploader"
    title: str = "title"
    text: str = "text"


# ---- label maps ------------------------------------------------------------------------------


def read_label_map(path: Path) -> dict[str, str]:
    """A label map file: CSV `theirs,ours` rows (a header `label,ours` or none) or YAML
    `theirs: ours`; every `ours` must be one of our labels."""
    if not path.is_file():
        raise LabelsError(f"label map {path} does not exist")
    text = path.read_text(encoding="utf-8")
    pairs: list[tuple[str, str, str]] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise LabelsError(f"label map {path}: expected `their word: our label` lines")
        pairs = [(str(k), str(v), f"{path.name} key {k!r}") for k, v in data.items()]
    else:
        for n, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise LabelsError(f"label map {path.name} row {n}: expected two columns")
            if n == 1 and row[1].strip().lower() not in _ours():
                continue  # a header
            pairs.append((row[0], row[1], f"{path.name} row {n}"))
    out: dict[str, str] = {}
    for theirs, ours, where in pairs:
        ours_n = _norm(ours)
        if ours_n not in _ours():
            raise LabelsError(
                f"label map {where}: {ours!r} is not one of our labels ({', '.join(CHOICES)})"
            )
        out[_norm(theirs)] = _ours()[ours_n]
    return out


def _norm(word: str) -> str:
    return " ".join(word.strip().lower().split())


def _ours() -> dict[str, str]:
    return {_norm(c): c for c in CHOICES}


def map_label(word: str, label_map: Mapping[str, str], where: str) -> str:
    """The dataset's word as our label (our own words pass unmapped), or a LabelsError."""
    key = _norm(word)
    if key in label_map:
        return label_map[key]
    if key in _ours():
        return _ours()[key]
    hint = "; give a --label-map that maps it" if label_map or key else ""
    raise LabelsError(
        f"{where}: unknown label {word!r} (ours: {', '.join(CHOICES)}){hint}; nothing was imported"
    )


# ---- CSV files -------------------------------------------------------------------------------


def read_labels_csv(
    path: Path,
    label_map: Mapping[str, str] | None = None,
    columns: Columns | None = None,
) -> tuple[str, list[LabelRow]]:
    """(shape, rows) of a labels CSV; the shape is RATINGS when it has a rater column."""
    if not path.is_file():
        raise LabelsError(f"labels file {path} does not exist")
    label_map = label_map or {}
    columns = columns or Columns()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        for need in (columns.file, columns.label):
            if need not in header:
                raise LabelsError(
                    f"labels file {path.name} has no {need!r} column (columns: "
                    f"{', '.join(header) or 'none'}); name it with the column flags"
                )
        shape = RATINGS if columns.rater in header else ONE_PER_FILE
        rows: list[LabelRow] = []
        seen: dict[tuple[str, str | None], str] = {}
        for n, raw in enumerate(reader, start=2):  # row 1 is the header
            where = f"{path.name} row {n}"

            def get(col: str, raw: dict[str, str | None] = raw) -> str | None:
                value = raw.get(col)
                return value.strip() if isinstance(value, str) and value.strip() else None

            file = get(columns.file)
            if file is None:
                raise LabelsError(f"{where}: the {columns.file!r} column is empty")
            where = f"{where} ({file})"
            word = get(columns.label)
            if word is None:
                raise LabelsError(f"{where}: the {columns.label!r} column is empty")
            rater = get(columns.rater) if shape == RATINGS else None
            if shape == RATINGS and rater is None:
                raise LabelsError(f"{where}: the {columns.rater!r} column is empty")
            key = (_norm_path(file), rater)
            if key in seen:
                what = f"rater {rater!r} on this file" if rater else "this file"
                raise LabelsError(
                    f"{where}: duplicate row: {what} is already labelled in {seen[key]}"
                )
            seen[key] = f"row {n}"
            intensity = _intensity(get(columns.intensity), where)
            rows.append(
                LabelRow(
                    file=file,
                    label=map_label(word, label_map, where),
                    rater=rater,
                    intensity=intensity,
                    uploader=get(columns.uploader),
                    title=get(columns.title),
                    text=get(columns.text),
                    where=where,
                    original=word,
                )
            )
    if not rows:
        raise LabelsError(f"labels file {path.name} has no rows")
    return shape, rows


def _norm_path(file: str) -> str:
    return re.sub(r"/+", "/", file.replace("\\", "/")).removeprefix("./")


# Intensity words datasets use, on Label Studio's 1-3 rating.
INTENSITY_WORDS = {"low": 1, "weak": 1, "normal": 2, "medium": 2, "high": 3, "strong": 3}


def _intensity(value: str | None, where: str) -> int | None:
    if value is None:
        return None
    if value.strip().lower() in INTENSITY_WORDS:
        return INTENSITY_WORDS[value.strip().lower()]
    try:
        number = int(float(value))
    except ValueError:
        raise LabelsError(
            f"{where}: intensity {value!r} is neither 1-3 nor one of {', '.join(INTENSITY_WORDS)}"
        ) from None
    if not 1 <= number <= 3:
        raise LabelsError(f"{where}: intensity {value!r} is outside 1-3")
    return number


# ---- presets ---------------------------------------------------------------------------------

RAVDESS_EMOTIONS = {
    "01": ("neutral", NO_EMOTION),
    "02": ("calm", NO_EMOTION),
    "03": ("happy", "joy"),
    "04": ("sad", "sadness"),
    "05": ("angry", "anger"),
    "06": ("fearful", "fear"),
    "07": ("disgust", "disgust"),
    "08": ("surprised", "surprise"),
}
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
RAVDESS_MODALITIES = {"01": "audio-video", "02": "video only", "03": "audio only"}
RAVDESS_CHANNELS = {"01": "speech", "02": "song"}
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")

CREMA_EMOTIONS = {
    "ANG": ("anger", "anger"),
    "DIS": ("disgust", "disgust"),
    "FEA": ("fear", "fear"),
    "HAP": ("happy", "joy"),
    "NEU": ("neutral", NO_EMOTION),
    "SAD": ("sad", "sadness"),
}
CREMA_LEVELS = {"LO": 1, "MD": 2, "HI": 3, "XX": None}
CREMA_SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
_CREMA_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def ravdess_row(file: str) -> LabelRow:
    """The label RAVDESS's file name gives (module docstring), or a LabelsError."""
    stem = Path(file).stem
    match = _RAVDESS_NAME.match(stem)
    where = f"file name {file}"
    if not match:
        raise LabelsError(
            f"{where}: not a RAVDESS name (modality-channel-emotion-intensity-statement-"
            "repetition-actor, e.g. 03-01-05-02-01-01-01.wav)"
        )
    modality, channel, emotion, level, statement, repetition, actor = match.groups()
    if emotion not in RAVDESS_EMOTIONS or level not in ("01", "02"):
        raise LabelsError(f"{where}: unknown RAVDESS emotion {emotion!r} or intensity {level!r}")
    word, label = RAVDESS_EMOTIONS[emotion]
    intensity = 1 if label == NO_EMOTION else (2 if level == "01" else 3)
    sentence = RAVDESS_STATEMENTS.get(statement, f"statement {statement}")
    return LabelRow(
        file=file,
        label=label,
        intensity=intensity,
        uploader=f"ravdess-actor{actor}",
        title=sentence,
        text=(
            f"RAVDESS {RAVDESS_CHANNELS.get(channel, channel)}, "
            f"{RAVDESS_MODALITIES.get(modality, modality)}: {word} "
            f"({'normal' if level == '01' else 'strong'}), repetition {int(repetition)}, "
            f"actor {int(actor)}"
        ),
        where=where,
        original=word,
    )


def crema_d_row(file: str) -> LabelRow:
    """The label CREMA-D's file name gives (module docstring), or a LabelsError."""
    stem = Path(file).stem
    match = _CREMA_NAME.match(stem)
    where = f"file name {file}"
    if not match:
        raise LabelsError(f"{where}: not a CREMA-D name (actor_sentence_emotion_level)")
    actor, sentence, emotion, level = match.groups()
    if emotion not in CREMA_EMOTIONS or level not in CREMA_LEVELS:
        raise LabelsError(f"{where}: unknown CREMA-D emotion {emotion!r} or level {level!r}")
    word, label = CREMA_EMOTIONS[emotion]
    return LabelRow(
        file=file,
        label=label,
        intensity=CREMA_LEVELS[level],
        uploader=f"crema-d-actor{actor}",
        title=CREMA_SENTENCES.get(sentence, sentence),
        text=f"CREMA-D: {word} (level {level}), actor {actor}",
        where=where,
        original=word,
    )


PRESETS: dict[str, Callable[[str], LabelRow]] = {"ravdess": ravdess_row, "crema-d": crema_d_row}
