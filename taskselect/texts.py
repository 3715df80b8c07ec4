"""When two texts count as the same (prepare's leak checks, auto's held-out queries)."""


def normalize_text(text: str) -> str:
    """Key under which two texts count as the same: lower-cased, whitespace collapsed."""
    return " ".join(text.lower().split())
