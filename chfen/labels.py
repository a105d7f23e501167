"""The label set, kept importable as `chfen.labels`; it lives in the domain layer
(`chfen.domain.labels`, see docs/architecture.md), where new code imports it from."""

from chfen.domain.labels import CHOICES, EMOTION_INDEX, NO_EMOTION, PLUTCHIK

__all__ = ["CHOICES", "EMOTION_INDEX", "NO_EMOTION", "PLUTCHIK"]
