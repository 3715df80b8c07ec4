"""Prefect flows: the pipeline as the Prefect UI shows and runs it."""

from flows.pipeline import pipeline

__all__ = ["pipeline"]
