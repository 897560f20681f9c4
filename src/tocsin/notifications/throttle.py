"""Per-person throttling: a storm of incidents becomes a few messages, then one bundle.

Within any `window`, a contact method gets at most `burst` single pages and then one
message that bundles the rest ("12 new incidents need you"). Past that, pages wait for the
window to move on, and go out together in the next bundle.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RecentSends:
    """What one contact method of one person received in the trailing window."""

    count: int  # messages (a bundle counts once)
    oldest_at: datetime | None


@dataclass(frozen=True)
class ThrottleDecision:
    singles: list[uuid.UUID]
    bundle: list[uuid.UUID]  # sent as one message when it has two or more
    deferred: list[uuid.UUID]
    defer_until: datetime | None


def decide(
    due: list[uuid.UUID],
    recent: RecentSends,
    *,
    burst: int,
    window: timedelta,
    now: datetime,
) -> ThrottleDecision:
    """Split one contact method's due pages (oldest first) into singles, one bundle, and
    the ones that wait."""
    if recent.count > burst:
        # The window already had its bundle: wait until its oldest send leaves the window.
        until = (recent.oldest_at or now) + window
        return ThrottleDecision([], [], list(due), max(until, now + timedelta(seconds=1)))
    room = max(0, burst - recent.count)
    singles, rest = due[:room], due[room:]
    if len(rest) == 1 and recent.count + len(singles) < burst + 1:
        # One left over fits as the window's last message: no need to call it a bundle.
        return ThrottleDecision([*singles, *rest], [], [], None)
    return ThrottleDecision(singles, rest, [], None)
