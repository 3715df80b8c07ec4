"""Packaged text sources and the benchmarks built from them (or from the user's files)."""

from taskselect.data.benchmark import (
    TARGET_SOURCES,
    Benchmark,
    build_benchmark,
    load_custom_benchmark,
    prepare_benchmark,
)
from taskselect.data.sources import SENTIMENT_LABELS, SOURCES, Source, normalize_text

__all__ = [
    "SENTIMENT_LABELS",
    "SOURCES",
    "TARGET_SOURCES",
    "Benchmark",
    "Source",
    "build_benchmark",
    "load_custom_benchmark",
    "normalize_text",
    "prepare_benchmark",
]
