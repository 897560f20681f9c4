"""The escalation tests' scene (a team, a policy, an integration and a worker), for snooze."""

from tests.escalation.conftest import scene  # noqa: F401
