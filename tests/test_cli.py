"""The `tocsin` command, run as a real process against a SQLite file: admin bootstrap for
scripts, and the first start of `serve` on an empty database."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

TIMEOUT = 60.0


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a `tocsin` process: only our database, nothing from the caller's
    TOCSIN_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    clean["TOCSIN_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    clean["TOCSIN_LOG_LEVEL"] = "warning"
    return clean


def tocsin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tocsin.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_serving(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`command serve` on a free port, stdout dropped, stderr kept; returns the process and
    its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            httpx.get(f"{base_url}/healthz")
            return process, base_url
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"never started: {process.communicate()[1]}") from None
            time.sleep(0.1)


class Server:
    """`tocsin serve` as a child process, its stdout read line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tocsin.cli", "serve", "--port", str(self.port), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def output_until(self, marker: str) -> str:
        """Everything printed up to and including the first line holding marker."""
        seen = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            seen.append(line)
            if marker in line:
                return "".join(seen)
        raise AssertionError(f"{marker!r} never printed; got:\n{''.join(seen)}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server never became ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def serve(env: dict[str, str]) -> Iterator[list[Server]]:
    """Start servers with serve.append(Server(env)); all are stopped afterwards."""
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def test_users_create_and_api_keys_create_bootstrap_a_working_admin(
    env: dict[str, str], serve: list[Server]
) -> None:
    assert tocsin(env, "db", "upgrade").returncode == 0
    created = tocsin(
        env, "users", "create", "--email", "ops@example.com", "--name", "Ops", "--admin"
    )
    assert created.returncode == 0, created.stderr
    user_id = created.stdout.strip()
    issued = tocsin(env, "api-keys", "create", "--email", "ops@example.com")
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.strip()
    assert issued.stdout == key + "\n", "the key is printed alone, for KEY=$(...)"
    assert key.startswith("tk_")

    server = Server({**env, "TOCSIN_SECRET_KEY": "k" * 32})
    serve.append(server)
    output = server.output_until("Log in with an existing API key")
    assert "First start" not in output
    assert "TOCSIN_SECRET_KEY" not in output
    server.wait_ready()
    me = httpx.get(f"{server.base_url}/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200
    assert (me.json()["id"], me.json()["email"], me.json()["is_admin"]) == (
        user_id,
        "ops@example.com",
        True,
    )
    narrow = tocsin(
        env,
        "api-keys",
        "create",
        "--email",
        "ops@example.com",
        "--scope",
        "read",
        "--expires-in-days",
        "1",
    )
    assert narrow.returncode == 0, narrow.stderr
    read_only = {"Authorization": f"Bearer {narrow.stdout.strip()}"}
    assert httpx.get(f"{server.base_url}/api/v1/users/me", headers=read_only).status_code == 200
    refused = httpx.post(f"{server.base_url}/api/v1/teams", headers=read_only, json={"name": "Ops"})
    assert refused.status_code == 403
    assert "needs scope 'full'" in refused.json()["detail"]
    audit = httpx.get(
        f"{server.base_url}/api/v1/audit",
        headers={"Authorization": f"Bearer {key}"},
        params={"object_type": "users"},
    ).json()["items"]
    assert [(e["via"], e["action"], e["object_id"]) for e in audit] == [("cli", "created", user_id)]


def test_bootstrap_commands_fail_cleanly_and_print_nothing_on_stdout(
    env: dict[str, str],
) -> None:
    tocsin(env, "db", "upgrade")
    assert tocsin(env, "users", "create", "--email", "a@example.com", "--name", "A").returncode == 0
    taken = tocsin(env, "users", "create", "--email", "a@example.com", "--name", "A")
    assert taken.returncode == 1
    assert taken.stdout == ""
    unknown = tocsin(env, "api-keys", "create", "--email", "nobody@example.com")
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert "nobody@example.com" in unknown.stderr


def test_the_first_serve_on_an_empty_database_prints_a_one_time_login_and_key(
    env: dict[str, str], serve: list[Server]
) -> None:
    first = Server(env)
    serve.append(first)
    output = first.output_until("API key:")
    # One `serve` on SQLite may make its own key up, but says what that costs.
    assert "WARNING tocsin.cli: TOCSIN_SECRET_KEY is not set" in output
    first.wait_ready()
    key = output.split("API key:")[1].split()[0]
    email = output.split("email:")[1].split()[0]
    password = output.split("password:")[1].split()[0]
    me = httpx.get(f"{first.base_url}/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200
    assert me.json()["is_admin"] is True
    login = httpx.post(
        f"{first.base_url}/api/v1/auth/login", json={"email": email, "password": password}
    )
    assert login.status_code == 200
    first.stop()

    second = Server(env)
    serve.append(second)
    output = second.output_until("Log in with an existing API key")
    assert key not in output and password not in output
    assert "First start" not in output


async def test_serve_processes_share_the_port_on_postgresql_and_are_refused_on_sqlite(
    env: dict[str, str], serve: list[Server], database_url: str
) -> None:
    env = {**env, "TOCSIN_DATABASE_URL": database_url, "TOCSIN_SECRET_KEY": "shared-by-all"}
    if database_url.startswith("sqlite"):
        refused = tocsin(env, "serve", "--processes", "2")
        assert refused.returncode == 2
        assert "--processes needs PostgreSQL" in refused.stderr
        return
    server = Server(env, "--processes", "2", "--no-worker")
    serve.append(server)
    output = server.output_until("API key:")
    server.wait_ready()
    key = output.split("API key:")[1].split()[0]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=headers, timeout=TIMEOUT
    ) as http:
        integration = (
            await http.post("/api/v1/integrations", json={"name": "hook", "type": "generic"})
        ).json()
        answers = []
        for n in range(30):
            # A new connection each time, so the kernel spreads them over the processes.
            async with httpx.AsyncClient(base_url=server.base_url, timeout=TIMEOUT) as one:
                answers.append(
                    await one.post(f"/webhooks/{integration['key']}", json={"title": f"disk {n}"})
                )
        assert [a.status_code for a in answers] == [202] * 30
        stored = (await http.get("/api/v1/alerts", params={"limit": 100})).json()["items"]
    assert sorted(a["title"] for a in stored) == sorted(f"disk {n}" for n in range(30))


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("worker",), "a `tocsin worker` signs"),
        (("serve", "--no-worker"), "--no-worker"),
    ],
)
def test_processes_that_share_work_refuse_to_start_without_a_secret_key(
    env: dict[str, str], args: tuple[str, ...], why: str
) -> None:
    for unset in (env, {**env, "TOCSIN_SECRET_KEY": ""}):
        refused = tocsin(unset, *args)
        assert refused.returncode == 2
        assert "TOCSIN_SECRET_KEY is not set" in refused.stderr
        assert why in refused.stderr


async def test_serve_on_postgresql_refuses_to_start_without_a_secret_key(
    env: dict[str, str], database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's rule")
    for args in (("serve",), ("serve", "--processes", "2")):
        refused = tocsin({**env, "TOCSIN_DATABASE_URL": database_url}, *args)
        assert refused.returncode == 2
        assert "TOCSIN_SECRET_KEY is not set" in refused.stderr
