"""Deployment: what the Dockerfile does (build a wheel from the files it copies, install it
into a fresh environment, upgrade the database, serve), run here without Docker, which has
no engine on this machine; and the systemd units, checked by systemd itself."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from tests.test_cli import start_serving

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
UNITS = ROOT / "deploy" / "systemd"


def build_stage_copies() -> list[str]:
    """The sources the Dockerfile's build stage copies in (`COPY a b ./` lines before the
    second FROM)."""
    build_stage = DOCKERFILE.split("\nFROM ")[1]
    sources: list[str] = []
    for line in build_stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            sources += line.split()[1:-1]
    return sources


def run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_image_s_wheel_installs_into_a_fresh_environment_upgrades_and_serves(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in build_stage_copies():
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "wheels", source)
    [wheel] = (tmp_path / "wheels").glob("tocsin-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    site = Path(
        run(
            venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"
        ).strip()
    )
    # The wheel itself, unpacked as pip would; its dependencies borrowed from this
    # environment (installing them from the registry would only test the registry). Paths
    # from a .pth file come after the venv's own site-packages, and this environment's
    # editable tocsin is not among them: `import tocsin` finds the wheel's copy.
    run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel)
    (site / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = venv / "bin" / "python"
    located = run(python, "-c", "import tocsin; print(tocsin.__file__)")
    assert located.startswith(str(site)), located

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN_", "OTEL_"))}
    env |= {
        "TOCSIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'tocsin.db'}",
        "TOCSIN_LOG_LEVEL": "warning",
    }
    tocsin = [str(python), "-m", "tocsin.cli"]
    assert "status" in run(*tocsin, "--help", env=env)
    assert "latest schema" in run(*tocsin, "db", "upgrade", env=env)

    server, base_url = start_serving(tocsin, env)
    try:
        for path in ("/healthz", "/readyz", "/api/v1/openapi.json"):
            assert httpx.get(base_url + path, timeout=60).status_code == 200, path
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=60)
    # uvicorn shuts down cleanly, then re-raises SIGTERM, as a well-behaved process does.
    assert server.returncode in (0, -signal.SIGTERM), errors
    assert "Traceback" not in errors, errors


def test_the_image_runs_as_a_non_root_user_with_a_healthcheck_and_a_data_volume() -> None:
    final_stage = DOCKERFILE.split("\nFROM ")[-1]
    user = re.search(r"^USER (\S+)$", final_stage, re.MULTILINE)
    assert user is not None and user.group(1) not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", final_stage, re.MULTILINE)
    assert 'VOLUME ["/var/lib/tocsin"]' in final_stage
    assert "TOCSIN_DATABASE_URL=sqlite+aiosqlite:////var/lib/tocsin/tocsin.db" in final_stage
    assert 'CMD ["sh", "-c", "tocsin db upgrade && exec tocsin serve"]' in final_stage
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*", "everything is left out but what the build copies"
    assert {f"!{n}" for n in build_stage_copies()} <= {line.rstrip("/") for line in ignored}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize(
    ("unit", "instance"),
    [
        ("tocsin-serve.service", "tocsin-serve.service"),
        ("tocsin-worker@.service", "tocsin-worker@1.service"),
    ],
)
def test_the_systemd_units_are_valid_and_hardened(unit: str, instance: str, tmp_path: Path) -> None:
    text = (UNITS / unit).read_text()
    for option in (
        "User=tocsin",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "StateDirectory=tocsin",
    ):
        assert f"\n{option}\n" in text, option
    # systemd checks that the command exists: point it at this environment's tocsin.
    here = Path(sys.executable).parent / "tocsin"
    (tmp_path / unit).write_text(text.replace("/opt/tocsin/bin/tocsin", str(here)))
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / instance)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == "", verified.stderr
