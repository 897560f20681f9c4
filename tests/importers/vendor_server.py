"""A loopback stand-in for a vendor's REST API, serving the hand-written answers in
tests/fixtures/<vendor>/ with the vendor's own pagination, and a 429 when told to.

Paths map to files: /users -> users.json, /schedules/X -> schedules/X.json,
/teams/X/members -> teams/X.members.json. A list answer is cut into pages the way the vendor
documents it (PagerDuty: offset/limit/more; Opsgenie: paging.next; Grafana OnCall: next).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FIXTURES = Path(__file__).parent.parent / "fixtures"
PAGE_SIZE = 2  # small pages, so every listing takes several requests


@dataclass
class VendorApi:
    vendor: str
    base_url: str = ""
    # Request numbers (1-based) answered with 429 instead.
    rate_limit_at: set[int] = field(default_factory=set)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (path, query, status)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        parts = [part for part in path.split("/") if part]
        for prefix in (["api", "v1"], ["v2"], ["v1"]):
            if parts[: len(prefix)] == prefix:
                parts = parts[len(prefix) :]
        name = (
            f"{parts[0]}/{parts[1]}.{parts[2]}.json"
            if len(parts) == 3
            else "/".join(parts) + ".json"
        )
        file = FIXTURES / self.vendor / name
        if not file.is_file():
            return 404, _not_found(self.vendor)
        body: dict[str, Any] = json.loads(file.read_text())
        return 200, self._page(body, path, query)

    def _page(self, body: dict[str, Any], path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if self.vendor == "pagerduty" and "more" in body:
            key = next(k for k, v in body.items() if isinstance(v, list))
            offset = int(query.get("offset", ["0"])[0])
            limit = min(int(query.get("limit", [str(PAGE_SIZE)])[0]), PAGE_SIZE)
            items = body[key]
            return {
                **body,
                key: items[offset : offset + limit],
                "offset": offset,
                "limit": limit,
                "more": offset + limit < len(items),
            }
        if self.vendor == "opsgenie" and isinstance(body.get("data"), list) and "paging" in body:
            offset = int(query.get("offset", ["0"])[0])
            items = body["data"]
            page = {**body, "data": items[offset : offset + PAGE_SIZE], "paging": {}}
            if offset + PAGE_SIZE < len(items):
                rest = {k: v[0] for k, v in query.items() if k != "offset"}
                rest["offset"] = str(offset + PAGE_SIZE)
                page["paging"] = {"next": f"{self.base_url}{path}?{urlencode(rest)}"}
            return page
        if self.vendor == "grafana-oncall" and isinstance(body.get("results"), list):
            number = int(query.get("page", ["1"])[0])
            items = body["results"]
            start = (number - 1) * PAGE_SIZE
            more = start + PAGE_SIZE < len(items)
            rest = {k: v[0] for k, v in query.items() if k != "page"}
            rest["page"] = str(number + 1)
            return {
                **body,
                "count": len(items),
                "results": items[start : start + PAGE_SIZE],
                "next": f"{self.base_url}{path}?{urlencode(rest)}" if more else None,
                "previous": None,
                "page_size": PAGE_SIZE,
                "current_page_number": number,
                "total_pages": (len(items) + PAGE_SIZE - 1) // PAGE_SIZE,
            }
        return body

    def statuses(self) -> list[int]:
        return [status for _, _, status in self.requests]


def _not_found(vendor: str) -> dict[str, Any]:
    if vendor == "pagerduty":
        return {"error": {"message": "Not Found", "code": 2100}}
    if vendor == "opsgenie":
        return {"message": "Not found", "took": 0.001, "requestId": "0"}
    return {"detail": "Not found."}


def _rate_limited(vendor: str) -> dict[str, Any]:
    if vendor == "pagerduty":
        return {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    if vendor == "opsgenie":
        return {"message": "You are making too many requests!", "took": 0.0, "requestId": "1"}
    return {"detail": "Request was throttled."}


def _handler(api: VendorApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            with api.lock:
                number = len(api.requests) + 1
                api.headers.append(dict(self.headers.items()))
                if number in api.rate_limit_at:
                    status, body = 429, _rate_limited(api.vendor)
                else:
                    status, body = api.answer(url.path, query)
                api.requests.append((url.path, url.query, status))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls(folder: Path) -> Tls:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tocsin test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


@contextmanager
def vendor_api(vendor: str, *, tls: Tls | None = None) -> Iterator[VendorApi]:
    """Serve `vendor`'s fixtures on a free loopback port until the block ends."""
    api = VendorApi(vendor)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    api.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
