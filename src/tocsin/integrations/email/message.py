"""Turning one email into a normalised alert: subject as title, plain text as description,
severity from rules, headers or keywords, resolve markers, and a subject-based dedup key.

Pure: no database. Threading (a reply joining the incident its first message opened) needs
the store and lives in threads.py; this module only reads the ids a message refers to.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.normalised import NormalisedAlert

MAX_TITLE = 1024
MAX_DESCRIPTION = 65_536
MAX_MESSAGE_ID = 512
# Subjects up to this length are kept readable in the dedup key; longer ones are hashed.
_READABLE_KEY = 200

# Reply and forward prefixes in the languages mail clients commonly add.
_REPLY_PREFIX = r"(?:(?:re|fwd?|aw|sv|wg|tr)\s*:\s*)"
# What monitoring tools put in front of a subject to say whether it fires or recovers:
# "[FIRING:2] ...", "[RESOLVED] ...", "RESOLVED: ...", "** RECOVERY ...", "PROBLEM - ...".
_STATUS_WORDS = r"resolved|recovered|recovery|ok|problem|firing|alert|alerting|triggered"
_MARKER = (
    r"(?:\[\s*(?P<bracket>[a-z]+)(?::\s*\d+)?\s*\]\s*[:\-]?\s*"
    rf"|\*\*\s*(?P<starred>{_STATUS_WORDS})\b\s*"
    rf"|(?P<word>{_STATUS_WORDS})\s*[:\-]\s*)"
)
_LEADING = re.compile(rf"^\s*(?:{_REPLY_PREFIX}|{_MARKER})*", re.IGNORECASE)
_MARKERS_ONLY = re.compile(_MARKER, re.IGNORECASE)
RESOLVE_WORDS = frozenset({"resolved", "recovered", "recovery", "ok"})

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")

# Keyword rules tried on the subject when no configured rule and no priority header decide.
DEFAULT_SEVERITY_KEYWORDS: tuple[tuple[re.Pattern[str], Severity], ...] = (
    (
        re.compile(r"\b(critical|crit|emergency|fatal|outage|down|p1|sev1)\b", re.I),
        Severity.CRITICAL,
    ),
    (
        re.compile(r"\b(error|errors|fail|failed|failure|failing|high|p2|sev2)\b", re.I),
        Severity.HIGH,
    ),
    (re.compile(r"\b(warn|warning|degraded|p3|sev3)\b", re.I), Severity.MEDIUM),
    (re.compile(r"\b(low|p4|sev4)\b", re.I), Severity.LOW),
    (re.compile(r"\b(info|notice|p5)\b", re.I), Severity.INFO),
)
DEFAULT_SEVERITY = Severity.HIGH


@dataclass(frozen=True)
class EmailRules:
    """How severity and resolves are read from a message (from settings)."""

    severity_rules: tuple[tuple[re.Pattern[str], Severity], ...] = ()
    resolve_pattern: re.Pattern[str] | None = None

    @classmethod
    def from_settings(
        cls, severity_rules: list[tuple[str, str]], resolve_pattern: str
    ) -> EmailRules:
        """Compiled rules; ValueError naming the bad rule, so a typo stops the server."""
        compiled = []
        for pattern, severity in severity_rules:
            try:
                compiled.append((re.compile(pattern, re.IGNORECASE), Severity(severity)))
            except (re.error, ValueError) as exc:
                raise ValueError(
                    f"TOCSIN_SMTP_SEVERITY_RULES: [{pattern!r}, {severity!r}] is invalid: {exc}"
                ) from exc
        resolve = None
        if resolve_pattern:
            try:
                resolve = re.compile(resolve_pattern, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"TOCSIN_SMTP_RESOLVE_PATTERN is invalid: {exc}") from exc
        return cls(tuple(compiled), resolve)


@dataclass(frozen=True)
class ParsedEmail:
    """What an alert is made of, read from one message."""

    subject: str
    body: str
    sender: str
    message_id: str | None
    # Ids of earlier messages this one answers, nearest first (In-Reply-To, then References).
    refers_to: tuple[str, ...]
    priority_header: Severity | None


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _priority_from_headers(message: EmailMessage) -> Severity | None:
    x_priority = str(message.get("X-Priority", "")).strip()
    if x_priority[:1] in ("1", "2", "4", "5"):
        return {
            "1": Severity.CRITICAL,
            "2": Severity.HIGH,
            "4": Severity.LOW,
            "5": Severity.LOW,
        }[x_priority[:1]]
    importance = str(message.get("Importance", "") or message.get("Priority", "")).lower()
    if importance.strip() in ("high", "urgent"):
        return Severity.HIGH
    if importance.strip() in ("low", "non-urgent"):
        return Severity.LOW
    return None


def _body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset or broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    content = content.replace("\r\n", "\n")  # SMTP line endings, as stored text
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return content.strip()


def _message_ids(value: object) -> list[str]:
    return [m for m in _MESSAGE_ID.findall(str(value or "")) if len(m) <= MAX_MESSAGE_ID]


def parse_email(raw: bytes) -> ParsedEmail:
    """Read the parts of a raw RFC 5322 message that make an alert. Never raises: the email
    parser records defects instead of failing, and anything missing becomes empty."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    own_ids = _message_ids(message.get("Message-ID"))
    refers = _message_ids(message.get("In-Reply-To"))
    refers += [m for m in reversed(_message_ids(message.get("References"))) if m not in refers]
    return ParsedEmail(
        subject=_one_line(str(message.get("Subject", "") or "")),
        body=_body_text(message),
        sender=_one_line(str(message.get("From", "") or "")),
        message_id=own_ids[0] if own_ids else None,
        refers_to=tuple(refers),
        priority_header=_priority_from_headers(message),
    )


def strip_markers(subject: str) -> tuple[str, bool]:
    """The subject without reply prefixes and status markers, and whether a marker said the
    problem is over."""
    lead = _LEADING.match(subject)
    prefix = lead.group(0) if lead else ""
    resolved = False
    for marker in _MARKERS_ONLY.finditer(prefix):
        word = marker.group("bracket") or marker.group("starred") or marker.group("word")
        word = (word or "").lower()
        resolved = word in RESOLVE_WORDS  # the last marker wins: "Re: [RESOLVED] ..."
    return subject[len(prefix) :].strip(), resolved


def subject_dedup_key(subject: str) -> str:
    """The dedup key of a subject: firing and resolved messages of one problem share it."""
    core, _ = strip_markers(subject)
    normal = " ".join(core.lower().split())
    if len(normal) <= _READABLE_KEY:
        return f"subject:{normal}"
    return "subject-sha256:" + hashlib.sha256(normal.encode()).hexdigest()


def severity_of(parsed: ParsedEmail, rules: EmailRules) -> Severity:
    for pattern, severity in rules.severity_rules:
        if pattern.search(parsed.subject):
            return severity
    if parsed.priority_header is not None:
        return parsed.priority_header
    for pattern, severity in DEFAULT_SEVERITY_KEYWORDS:
        if pattern.search(parsed.subject):
            return severity
    return DEFAULT_SEVERITY


def is_resolve(parsed: ParsedEmail, rules: EmailRules) -> bool:
    if rules.resolve_pattern is not None:
        return rules.resolve_pattern.search(parsed.subject) is not None
    return strip_markers(parsed.subject)[1]


def alert_from_email(
    parsed: ParsedEmail, *, dedup_key: str, rules: EmailRules, recipient: str
) -> NormalisedAlert:
    """The alert for one message; `dedup_key` is the subject's or, for a reply, its
    thread's."""
    return NormalisedAlert(
        title=(parsed.subject or "(no subject)")[:MAX_TITLE],
        description=parsed.body[:MAX_DESCRIPTION],
        severity=severity_of(parsed, rules),
        status=AlertStatus.RESOLVED if is_resolve(parsed, rules) else AlertStatus.FIRING,
        source=f"email:{parsed.sender}"[:512],
        dedup_key=dedup_key,
        details={
            "email": {
                "from": parsed.sender,
                "to": recipient,
                "subject": parsed.subject,
                "message_id": parsed.message_id,
                "in_reply_to": list(parsed.refers_to[:5]),
            }
        },
    )
