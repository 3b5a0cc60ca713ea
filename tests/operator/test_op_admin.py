"""The admin API client against a real HTTP server on loopback that speaks the documented
contract (docs/admin-api.md): auth header, JSON bodies, 404 tolerance, 501 -> NotSupported."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selfsigned import make_cert

from anode_operator.admin import AdminClient, AdminError, NotSupported, Unreachable

TOKEN = "root-secret"


class FakeNode(BaseHTTPRequestHandler):
    users: dict[str, dict] = {}
    requests: list[tuple[str, str, dict | None]] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _reply(self, status: int, body: dict | None = None) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((self.command, self.path, body))
        if self.path == "/ready":
            return self._reply(200, {"ready": True})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(401, {"error": "unauthorized", "code": "Unauthorized"})
        if self.path.startswith("/cluster/"):
            return self._reply(501, {"error": "not implemented", "code": "NotImplemented"})
        if self.command == "GET" and self.path == "/status":
            return self._reply(200, {"node_id": "n0", "role": "leader", "leader": "n0"})
        if self.command == "POST" and self.path == "/users":
            user = {
                "name": body["name"],
                "access_key": body.get("access_key", "AKGEN"),
                "secret_key": body.get("secret_key", "SKGEN"),
            }
            old = self.users.get(body["name"])
            if old and old != user:
                return self._reply(409, {"error": "taken", "code": "UserExists"})
            self.users[body["name"]] = user
            return self._reply(200 if old else 201, user)
        if self.command == "DELETE" and self.path.startswith("/users/"):
            name = self.path.split("/")[-1]
            if self.users.pop(name, None) is None:
                return self._reply(404, {"error": "no such user", "code": "NoSuchUser"})
            return self._reply(204)
        if self.command == "DELETE" and self.path.startswith("/buckets/"):
            return self._reply(404, {"error": "no such bucket", "code": "NoSuchBucket"})
        return self._reply(400, {"error": "bad", "code": "InvalidArgument"})

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def node():
    FakeNode.users = {}
    FakeNode.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNode)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_status_sends_bearer_token(node):
    client = AdminClient(base_url=node, token=TOKEN)
    assert client.status()["role"] == "leader"
    assert client.ready() is True


def test_wrong_token_is_an_admin_error_with_the_node_code(node):
    with pytest.raises(AdminError) as exc:
        AdminClient(base_url=node, token="nope").status()
    assert exc.value.status == 401 and exc.value.code == "Unauthorized"


def test_create_user_is_idempotent_with_the_same_keys(node):
    client = AdminClient(base_url=node, token=TOKEN)
    first = client.create_user(name="u", access_key="AK", secret_key="SK")
    again = client.create_user(name="u", access_key="AK", secret_key="SK")
    assert first == again == {"name": "u", "access_key": "AK", "secret_key": "SK"}
    with pytest.raises(AdminError) as exc:
        client.create_user(name="u", access_key="AK2", secret_key="SK2")
    assert exc.value.status == 409


def test_deletes_tolerate_absence(node):
    client = AdminClient(base_url=node, token=TOKEN)
    client.create_user(name="u")
    assert client.delete_user(name="u") is True
    assert client.delete_user(name="u") is False
    assert client.delete_bucket(name="b", force=True) is False
    assert ("DELETE", "/buckets/b?force=true", None) in FakeNode.requests


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.add_member(node_id="n1", address="n1:9090"),
        lambda c: c.drain_member(node_id="n1"),
        lambda c: c.remove_member(node_id="n1"),
        lambda c: c.transfer_leadership(to="n1"),
    ],
)
def test_membership_501_is_not_supported(node, call):
    with pytest.raises(NotSupported):
        call(AdminClient(base_url=node, token=TOKEN))


def test_connection_refused_is_unreachable():
    with pytest.raises(Unreachable):
        AdminClient(base_url="http://127.0.0.1:9", token=TOKEN, timeout=1).status()


def test_tls_trust_is_anchored_at_the_clusters_certificate_not_host_names(tmp_path):
    from anode_operator.tlsclient import trust_context

    pem = make_cert(tmp_path)[0].read_text()
    pinned = trust_context({"tls.crt": pem, "tls.key": "ignored"})
    assert pinned.check_hostname is False and pinned.verify_mode == ssl.CERT_REQUIRED
    assert pinned.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    assert pinned.minimum_version == ssl.TLSVersion.TLSv1_2
    assert len(pinned.get_ca_certs()) == 1
    # ca.crt (cert-manager) wins over tls.crt; an empty Secret falls back to system CAs
    assert len(trust_context({"ca.crt": pem, "tls.crt": "not pem"}).get_ca_certs()) == 1
    assert trust_context(None).check_hostname is True
