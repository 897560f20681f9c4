"""Inhibition with Alertmanager's semantics, on its documented examples (the `inhibit_rules`
section of Alertmanager's configuration reference)."""

from __future__ import annotations

import uuid

from tocsin.noise.decide import Candidate, Inhibition, Source, inhibited_by
from tocsin.noise.matchers import Matcher, MatchOp, labels_of

TEAM = uuid.uuid4()


def tag(name: str, value: str, op: str = "=") -> Matcher:
    return Matcher("tag", MatchOp(op), value, name)


def alert(**tags: str) -> Candidate:
    return Candidate(
        labels_of(tags=tags, title="t", source="s", severity="high", service=""),
        TEAM,
        None,
    )


def source(of: Candidate) -> Source:
    return Source(of.labels, of.team_id)


# The reference's example: mute warnings when the same alert (alertname) is critical.
CRITICAL_MUTES_WARNING = Inhibition(
    id=uuid.uuid4(),
    team_id=None,
    name="critical mutes warning",
    source=(tag("severity", "critical"),),
    target=(tag("severity", "warning"),),
    equal=("alertname",),
)


def test_a_firing_critical_mutes_the_warning_of_the_same_alertname() -> None:
    critical = alert(alertname="DiskFull", severity="critical")
    warning = alert(alertname="DiskFull", severity="warning")
    assert inhibited_by(CRITICAL_MUTES_WARNING, warning, [source(critical)])


def test_a_critical_of_another_alertname_mutes_nothing() -> None:
    critical = alert(alertname="NodeDown", severity="critical")
    warning = alert(alertname="DiskFull", severity="warning")
    assert not inhibited_by(CRITICAL_MUTES_WARNING, warning, [source(critical)])


def test_without_a_firing_source_nothing_is_muted() -> None:
    warning = alert(alertname="DiskFull", severity="warning")
    assert not inhibited_by(CRITICAL_MUTES_WARNING, warning, [])


def test_the_source_is_never_muted_by_the_rule() -> None:
    critical = alert(alertname="DiskFull", severity="critical")
    assert not inhibited_by(CRITICAL_MUTES_WARNING, critical, [source(critical)])


def test_a_label_missing_on_both_sides_counts_as_equal() -> None:
    critical = alert(severity="critical")
    warning = alert(severity="warning")
    assert inhibited_by(CRITICAL_MUTES_WARNING, warning, [source(critical)])


def test_a_label_missing_on_one_side_only_is_not_equal() -> None:
    critical = alert(severity="critical")
    warning = alert(alertname="DiskFull", severity="warning")
    assert not inhibited_by(CRITICAL_MUTES_WARNING, warning, [source(critical)])


def test_alerts_matching_both_sides_do_not_mute_each_other() -> None:
    """The reference: an alert that matches both the source and the target side cannot be
    inhibited by an alert that also matches both."""
    rule = Inhibition(
        id=uuid.uuid4(),
        team_id=None,
        name="cluster down mutes the cluster",
        source=(tag("cluster", ".+", "=~"),),
        target=(tag("cluster", ".+", "=~"),),
        equal=("cluster",),
    )
    one = alert(cluster="eu-1", alertname="A")
    two = alert(cluster="eu-1", alertname="B")
    assert not inhibited_by(rule, two, [source(one)])


def test_a_rule_of_one_team_does_not_reach_another_teams_alerts() -> None:
    rule = Inhibition(
        id=uuid.uuid4(),
        team_id=uuid.uuid4(),
        name="other team",
        source=CRITICAL_MUTES_WARNING.source,
        target=CRITICAL_MUTES_WARNING.target,
        equal=CRITICAL_MUTES_WARNING.equal,
    )
    critical = alert(alertname="DiskFull", severity="critical")
    warning = alert(alertname="DiskFull", severity="warning")
    assert not inhibited_by(rule, warning, [source(critical)])
