"""Reading a severity from the words monitoring tools use for it."""

from __future__ import annotations

from tocsin.alerts.models import Severity

_WORDS: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "crit": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "emergency": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
    "disaster": Severity.CRITICAL,
    "p1": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "p2": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "warning": Severity.MEDIUM,
    "warn": Severity.MEDIUM,
    "average": Severity.MEDIUM,
    "p3": Severity.MEDIUM,
    "low": Severity.LOW,
    "minor": Severity.LOW,
    "p4": Severity.LOW,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "none": Severity.INFO,
    "p5": Severity.INFO,
}


def find_severity(word: object) -> Severity | None:
    """The severity a word such as `warning`, `P2` or `critical` names, or None."""
    if not isinstance(word, str):
        return None
    return _WORDS.get(word.strip().lower())


def severity_from_word(word: object, default: Severity = Severity.HIGH) -> Severity:
    """The severity a word names; `default` when it names none."""
    found = find_severity(word)
    return default if found is None else found
