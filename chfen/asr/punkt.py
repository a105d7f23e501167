"""Local Punkt sentence-splitter data for whisperx alignment, so it never downloads.

`whisperx.align` splits each segment into sentences with NLTK's Punkt model and calls
`nltk.download('punkt_tab')` when the model is missing, which fails offline. When NLTK cannot
find `tokenizers/punkt_tab/<language>/` we write a minimal model (no learned collocations or
sentence starters; a short list of abbreviations that do not end a sentence) into a private
folder and put that folder first on NLTK's data path.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

# Abbreviations (lower case, without the final period) after which a period does not end a
# sentence. Languages without an entry get none: every period then ends a sentence.
ABBREVIATIONS: dict[str, frozenset[str]] = {
    "english": frozenset(
        {
            "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e",
            "inc", "ltd", "co", "corp", "no", "vol", "approx", "dept", "est", "u.s", "u.k",
            "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        }
    ),
}  # fmt: skip

_lock = threading.Lock()
_data_dir: Path | None = None


def _installed(language: str) -> bool:
    import nltk

    try:
        nltk.data.find(f"tokenizers/punkt_tab/{language}/")
    except LookupError:
        return False
    return True


def ensure_punkt_tab(language: str = "english") -> Path | None:
    """Make `tokenizers/punkt_tab/<language>/` findable by NLTK without a download.

    Returns the folder written, or None when NLTK already had the model (from NLTK_DATA or
    an earlier call).
    """
    global _data_dir
    import nltk

    with _lock:
        if _installed(language):
            return None
        if _data_dir is None:
            _data_dir = Path(tempfile.mkdtemp(prefix="chfen-nltk-"))
        target = _data_dir / "tokenizers" / "punkt_tab" / language
        target.mkdir(parents=True, exist_ok=True)
        # The punkt_tab format: one abbreviation per line; the other tables may be empty.
        abbreviations = sorted(ABBREVIATIONS.get(language, frozenset()))
        files = {
            "abbrev_types.txt": "\n".join(abbreviations),
            "collocations.tab": "",
            "sent_starters.txt": "",
            "ortho_context.tab": "",
        }
        for name, text in files.items():
            (target / name).write_text(text, encoding="utf-8", newline="")
        if str(_data_dir) not in nltk.data.path:
            nltk.data.path.insert(0, str(_data_dir))
        if not _installed(language):
            raise RuntimeError(f"NLTK still cannot find the Punkt model written to {target}")
        return target
