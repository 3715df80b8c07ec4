"""Prefect flows: the pipeline (flows.pipeline) and a sweep over targets (flows.sweep), as the
Prefect UI shows and runs them. Nothing is imported here: `python -m flows.serve` sets the
process up (taskselect.environment) before Prefect is imported."""
