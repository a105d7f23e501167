"""CHFEN: the domain library (crawl, media, asr, embed, model, train, config)."""

__version__ = "0.1.0"
