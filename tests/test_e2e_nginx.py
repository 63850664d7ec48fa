"""docs/deploy/nginx.conf in a real nginx (TLS, HTTP/2 on, its own prefix and ports) in front of a real chatd
started as the unit starts it (``--trusted-proxies 127.0.0.1``, no ``--allowed-origins``): REST, a WebSocket chat
with a browser's Origin, a file upload over nginx's default body limit, the login rate limited per real client
(clients on 127.0.0.2 and 127.0.0.3), and an https page on the default port passing the Origin check."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import treq
from twisted.internet import endpoints, reactor, ssl
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool

from chatd.ratelimit import Rate
from chatd.storage.embedded import free_loopback_port
from chatd.web.proxies import TrustedProxies
from tests.harness import ROOT, Client, require, start_server, wait_for_port, wait_until
from tests.session import chat_session
from tests.tls import self_signed
from tests.wsclient import raw_handshake

# The session's five register/login/refresh calls fit; each other client gets this many.
AUTH_RATE = Rate(0.01, 8)
NGINX = shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")


def nginx_conf(directory: Path, chatd_port: int, http_port: int, https_port: int, key: Path, cert: Path) -> Path:
    """nginx.conf running docs/deploy/nginx.conf as shipped but for its ports, certificate and log paths."""
    server = (ROOT / "docs" / "deploy" / "nginx.conf").read_text()
    replacements = [
        (r"server 127\.0\.0\.1:8080;", f"server 127.0.0.1:{chatd_port};"),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        (r"\n\s*listen \[::\]:\d+[^;]*;", ""),  # loopback IPv4 only
        (r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};"),
        (r"access_log /var/log/nginx/chatd\.access\.log", f"access_log {directory}/access.log"),
    ]
    for pattern, replacement in replacements:
        server, count = re.subn(pattern, replacement, server)
        assert count >= 1, f"docs/deploy/nginx.conf no longer has {pattern!r}"
    (directory / "chatd.conf").write_text(server)
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers would otherwise be nobody, locked out of here
    conf = directory / "nginx.conf"
    conf.write_text(f"""{user}daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    access_log off;
    include {directory}/chatd.conf;
}}
""")
    return conf


class NginxTests(TestCase):
    timeout = 120

    async def test_chat_through_nginx(self):
        """Through nginx: register, log in, refresh, a chat on wss:// with the page's Origin, a 3 MB upload; one
        client's failed logins do not lock out another; the page's https origin passes without --allowed-origins."""
        require(NGINX is not None, "nginx (apt-get install -y nginx)")
        directory = Path(tempfile.mkdtemp(prefix="chatd-nginx-"))
        self.addCleanup(shutil.rmtree, directory, True)
        key, cert = self_signed(str(directory))
        http_port, https_port = free_loopback_port(), free_loopback_port()
        origin = f"https://localhost:{https_port}"
        # As docs/deploy/chatd.service starts it; no --allowed-origins (README.md, Deploy).
        server = await start_server(self, trusted_proxies=TrustedProxies.parse("127.0.0.1"), auth_rate=AUTH_RATE)
        conf = nginx_conf(directory, server.port, http_port, https_port, key, cert)
        process = subprocess.Popen([NGINX, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # nginx's "fast shutdown"; its workers exit with it
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            process.stderr.close()

        self.addCleanup(stop)
        wait_for_port(https_port, 10)
        self.assertIsNone(process.poll(), process.stderr.read() if process.poll() is not None else "")

        trust = ssl.Certificate.loadPEM(cert.read_bytes())
        agent = Agent(reactor, contextFactory=BrowserLikePolicyForHTTPS(trustRoot=trust),
                      pool=HTTPConnectionPool(reactor, persistent=False))
        plain = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))  # does not follow redirects
        redirect = await plain.request(b"GET", f"http://127.0.0.1:{http_port}/healthz".encode())
        await treq.content(redirect)
        self.assertEqual((redirect.code, redirect.headers.getRawHeaders("location")),
                         (301, ["https://127.0.0.1/healthz"]))
        health = await Client(origin, agent=agent).request("GET", "/healthz")
        self.assertEqual(health.status, 200, health)
        secrets = await chat_session(self, origin, file_size=3_000_000, agent=agent, origin=origin)

        await wait_until(lambda: (directory / "access.log").exists(), 5, "nginx's access log")
        access = (directory / "access.log").read_text()
        self.assertIn('"POST /api/rooms/lobby/files HTTP/1.1" 201', access)
        self.assertIn('"GET /ws HTTP/1.1" 101', access)
        for token in secrets.tokens:
            self.assertNotIn(token, access)
        self.assertNotIn("token=", access)

        # The login rate is per real client: nginx appends each one's address to X-Forwarded-For.
        def client(source: str) -> Client:
            return Client(f"https://127.0.0.1:{https_port}", agent=Agent(
                reactor, contextFactory=BrowserLikePolicyForHTTPS(trustRoot=trust), bindAddress=(source, 0),
                pool=HTTPConnectionPool(reactor, persistent=False)))

        async def refresh(http: Client, headers: dict | None = None) -> int:
            return (await http.request("POST", "/api/auth/refresh", token="not-a-token", headers=headers)).status

        first, second = client("127.0.0.2"), client("127.0.0.3")
        statuses = [await refresh(first) for _ in range(AUTH_RATE.burst + 1)]
        self.assertEqual(statuses, [401] * AUTH_RATE.burst + [429])
        self.assertEqual(await refresh(first, {"X-Forwarded-For": "198.51.100.1"}), 429)  # its own header: no help
        self.assertEqual(await refresh(second), 401)  # not locked out by the first

        # A page at https://chat.example.org (port 443, so the Host has no port): chatd sees plain HTTP, and
        # nginx's X-Forwarded-Proto makes the socket's Origin its own.
        tls = endpoints.wrapClientTLS(ssl.optionsForClientTLS("localhost", trust),
                                      endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", https_port))
        status, _, _ = await raw_handshake(https_port, secrets.tokens[1], "Origin: https://chat.example.org\r\n",
                                           endpoint=tls, host="chat.example.org")
        self.assertEqual(status, b"101")
