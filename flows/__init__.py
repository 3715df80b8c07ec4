"""Prefect flows: the pipeline and a sweep over targets, as the Prefect UI shows and runs them."""

from flows.pipeline import pipeline
from flows.sweep import sweep

__all__ = ["pipeline", "sweep"]
