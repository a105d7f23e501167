"""Fixtures for the embed stage: a clip with faces and scripted speech, the warehouse state
the scenes and ASR stages leave, and tiny random transformers models saved locally.

The face is a real photograph (Grace Hopper, shipped with matplotlib as sample data), so the
real Haar detector finds it; synthetic drawn faces are not detected reliably.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chfen.media.scenes import STAGE as SCENES_STAGE
from chfen.media.scenes import STAGE_VERSION as SCENES_VERSION
from chfen.media.scenes import ScenesStage
from chfen.media.testmedia import SpokenWord, register_video, synthesize_speech
from chfen.stages import run_for_video
from warehouse import Warehouse

# The clip: 0-3 s one face, 3-5 s two faces (one larger), 5-8 s test pattern, 8-9.5 s dark.
FACE_SECONDS = {0: 1, 1: 1, 2: 1, 3: 2, 4: 2}
SCRIPT = [(0.5, "The weather is lovely today."), (5.2, "Please bring seven green apples.")]
CLIP_SIZE = (640, 360)


def face_photo() -> Path:
    """A real frontal face photograph from an installed package, or skip."""
    try:
        import matplotlib
    except ImportError:
        pytest.skip("matplotlib (its sample photo is the test face) is not installed")
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip(f"the sample face photo {path} is missing")
    return path


@dataclass(frozen=True)
class Clip:
    video: Path
    audio: Path
    words: list[SpokenWord]
    duration_s: float  # as probed (the crawl stage's `videos.duration_s`)


def probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip())


def render_face_clip(out: Path, photo: Path) -> Path:
    w, h = CLIP_SIZE
    graph = (
        f"[0:v]scale=-2:{h},pad={w}:{h}:(ow-iw)/2:0:color=gray,setsar=1,fps=30[a];"
        "[1:v]split[b1][b2];[b1]scale=-2:340[l];[b2]scale=-2:220,pad=iw:340:0:60:color=gray[r];"
        f"[l][r]hstack,pad={w}:{h}:(ow-iw)/2:10:color=gray,setsar=1,fps=30[b];"
        "[2:v]setsar=1[c];[3:v]setsar=1[d];[a][b][c][d]concat=n=4:v=1:a=0,format=yuv420p[v]"
    )
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-loop", "1", "-framerate", "30", "-t", "3", "-i", str(photo),
        "-loop", "1", "-framerate", "30", "-t", "2", "-i", str(photo),
        "-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r=30:d=3",
        "-f", "lavfi", "-i", f"color=c=0x101010:s={w}x{h}:r=30:d=1.5",
        "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast",
        str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def face_photo_path() -> Path:
    return face_photo()


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    for tool in ("ffmpeg", "ffprobe", "espeak-ng"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    folder = tmp_path_factory.mktemp("embed_clip")
    video = render_face_clip(folder / "faces.mp4", face_photo())
    duration = probe_duration(video)
    words = synthesize_speech(folder / "speech.wav", SCRIPT, round(duration, 2) - 0.05)
    return Clip(video, folder / "speech.wav", words, duration)


@pytest.fixture(scope="session")
def plain_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4.5 s of test pattern: no face, no speech (and given no audio track)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    from chfen.media.testmedia import Shot, render_shots

    out = tmp_path_factory.mktemp("plain_clip") / "plain.mp4"
    return render_shots(out, [Shot(2.5, 30, 2), Shot(2.0, 30, 3)], size=(320, 240)).path


def word_rows(video_id: str, words: list[SpokenWord]) -> list[dict[str, Any]]:
    """`transcript_words` rows as the ASR stage would write them, with the scripted times."""
    return [
        {"video_id": video_id, "word_idx": i, "segment_idx": w.sentence, "word": w.word,
         "start_s": w.start_s, "end_s": w.end_s, "aligner": "script"}
        for i, w in enumerate(words)
    ]  # fmt: skip


def _prepare_video(
    wh: Warehouse,
    video_id: str,
    clip: Path,
    *,
    audio: Path | None,
    duration_s: float,
    words: list[SpokenWord] | None = None,
    title: str | None = "A happy day at the seaside",
    description: str | None = "Sun, sand and friends.",
) -> None:
    """The warehouse after crawl, scenes (run for real) and ASR (scripted words, marked done)."""
    row = register_video(wh, video_id, video=clip, audio=audio, duration_s=duration_s)
    wh.append("videos", [{**row, "title": title, "description": description}])
    outcome = run_for_video(wh, SCENES_STAGE, SCENES_VERSION, video_id, ScenesStage(wh))
    assert outcome.ok, outcome.message
    if words:
        wh.append("transcript_words", word_rows(video_id, words))
    wh.mark_done(video_id, "asr", "1")


@pytest.fixture(scope="session")
def prepare_video() -> Callable[..., None]:
    """`prepare_video(wh, video_id, clip, audio=, duration_s=, words=, title=, description=)`."""
    return _prepare_video


@pytest.fixture(scope="session")
def face_seconds() -> dict[int, int]:
    """Grid step (1 Hz) -> faces on screen in the face clip."""
    return dict(FACE_SECONDS)


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "data", catalog=False)


# ---- tiny random transformers models, saved and loaded back through from_pretrained ----------


@dataclass(frozen=True)
class TinyModels:
    text: Path  # BertModel + BertTokenizerFast
    image: Path  # ViTModel + ViTImageProcessor
    audio: Path  # Wav2Vec2Model + Wav2Vec2FeatureExtractor
    dim: int  # hidden size of all three


TINY_DIM = 32
TINY_WORDS = (
    "the weather is lovely today please bring seven green apples happy day at seaside sun "
    "sand and friends a of to in"
).split()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    import torch
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    root = tmp_path_factory.mktemp("tiny_models")
    torch.manual_seed(0)
    small = {"hidden_size": TINY_DIM, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64}  # fmt: skip

    text = root / "bert"
    text.mkdir()
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *TINY_WORDS,
        *"abcdefghijklmnopqrstuvwxyz",
    ]
    (text / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(str(text / "vocab.txt")).save_pretrained(text)
    BertModel(
        BertConfig(vocab_size=len(vocab), max_position_embeddings=64, **small)
    ).save_pretrained(text)

    image = root / "vit"
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(image)
    ViTModel(ViTConfig(image_size=32, patch_size=8, **small)).save_pretrained(image)

    audio = root / "wav2vec2"
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True
    ).save_pretrained(audio)
    Wav2Vec2Model(
        Wav2Vec2Config(
            conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
            **small,
        )
    ).save_pretrained(audio)  # fmt: skip
    return TinyModels(text, image, audio, TINY_DIM)
