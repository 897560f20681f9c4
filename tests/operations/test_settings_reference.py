"""docs/settings.md is the Settings class written out; `tocsin settings` shows values, never
secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocsin.cli import main
from tocsin.operations.settings_reference import settings_markdown

REFERENCE = Path(__file__).parents[2] / "docs" / "settings.md"


def test_the_settings_reference_matches_the_settings_class() -> None:
    assert REFERENCE.read_text() == settings_markdown(), (
        "docs/settings.md is out of date: run `tocsin settings --markdown > docs/settings.md`"
    )


def test_every_setting_is_in_the_reference_with_its_default() -> None:
    text = settings_markdown()
    assert "## `TOCSIN_LOG_FORMAT`\n\nType: one of `text`, `json`. Default: `text`." in text
    assert "## `TOCSIN_SMTP_LISTEN_PORT`\n\nType: integer, optional. Default: unset." in text
    assert "Type: JSON list of [string, string] pairs. Default: `[]`." in text
    assert "`OTEL_EXPORTER_OTLP_ENDPOINT`" in text


def test_tocsin_settings_prints_values_but_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOCSIN_DATABASE_URL", "postgresql+asyncpg://tocsin:hunter2@db/tocsin")
    monkeypatch.setenv("TOCSIN_SECRET_KEY", "very-secret-key")
    monkeypatch.setenv("TOCSIN_SMTP_PASSWORD", "mail-pass")
    monkeypatch.setenv("TOCSIN_HTTP_SMS_URL", "https://sms.example/send?apikey=k3y")
    monkeypatch.setenv("TOCSIN_PORT", "9090")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    for secret in ("hunter2", "very-secret-key", "mail-pass", "k3y"):
        assert secret not in out
    assert "TOCSIN_DATABASE_URL=postgresql+asyncpg://tocsin:***@db/tocsin\n" in out
    assert "TOCSIN_SECRET_KEY=(set)\n" in out
    assert "TOCSIN_TWILIO_AUTH_TOKEN=(empty)\n" in out
    assert "TOCSIN_PORT=9090\n" in out
