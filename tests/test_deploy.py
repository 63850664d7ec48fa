"""docs/deploy/: the systemd unit passes systemd's own checks, and every metric the Grafana dashboard queries
exists in ``/metrics`` of a real ``twistd chatd --workers 2`` after some traffic."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase, TestCase

from chatd.storage.embedded import free_loopback_port
from chatd.tap import Options
from tests.harness import ROOT, Client, require, wait_for_health, wait_until
from tests.test_e2e_twistd import TWISTD
from tests.wsclient import ConnectionRefused, connect, joined

DEPLOY = ROOT / "docs" / "deploy"
UNIT = DEPLOY / "chatd.service"
DASHBOARD = DEPLOY / "grafana-dashboard.json"


def unit_lines() -> dict[str, list[str]]:
    """The unit's settings: name → values, in order (comments and sections dropped)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


class SystemdUnitTests(SynchronousTestCase):
    """docs/deploy/chatd.service."""

    def _verified_copy(self) -> Path:
        # systemd-analyze verify fails when ExecStart's binary does not exist: /opt/chatd/venv is
        # where the README installs chatd, not here, so a copy points at this venv's twistd instead.
        copy = Path(tempfile.mkdtemp(prefix="chatd-unit-"), "chatd.service")
        self.addCleanup(shutil.rmtree, copy.parent, True)
        copy.write_text(UNIT.read_text().replace("/opt/chatd/venv/bin/twistd", TWISTD[0]))
        return copy

    def test_systemd_analyze_verify(self):
        """systemd-analyze verify finds nothing wrong with the unit."""
        require(shutil.which("systemd-analyze") is not None, "systemd-analyze")
        result = subprocess.run(["systemd-analyze", "verify", str(self._verified_copy())],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stderr.strip()), (0, ""), result.stdout)

    def test_hardening_exposure(self):
        """systemd's own security score rates the unit's exposure low (under 2.5 of 10)."""
        require(shutil.which("systemd-analyze") is not None, "systemd-analyze")
        result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(self._verified_copy())],
                                capture_output=True, text=True, timeout=60)
        level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
        self.assertIsNotNone(level, result.stdout + result.stderr)
        self.assertLess(float(level.group(1)), 2.5, result.stdout)

    def test_what_the_readme_promises(self):
        """A dedicated user, twistd -n, restart on failure, the data dir the only writable place, many files."""
        settings = unit_lines()
        self.assertEqual(settings["User"], ["chatd"])
        self.assertEqual(settings["StateDirectory"], ["chatd"])
        self.assertEqual(settings["Restart"], ["on-failure"])
        for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                           ("ProtectHome", "yes"), ("CapabilityBoundingSet", ""), ("KillMode", "mixed")]:
            self.assertEqual(settings[key], [value], key)
        self.assertGreaterEqual(int(settings["LimitNOFILE"][0]), 65536)

    def test_execstart_is_a_valid_chatd_command(self):
        """ExecStart runs twistd in the foreground with options chatd accepts: the state dir, JSON logs."""
        argv = shlex.split(unit_lines()["ExecStart"][0])
        self.assertEqual(argv[:2], ["/opt/chatd/venv/bin/twistd", "--nodaemon"])
        options = Options(environ={})
        options.parseOptions(argv[argv.index("chatd") + 1:])
        self.assertEqual(options.config.data_dir, "/var/lib/chatd")
        self.assertEqual(options.config.log_format, "json")


_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, label names and keywords left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\s*(\()?", expr):
        if match.group(2) is None and match.group(1) not in _WORDS:
            names.add(match.group(1))
    return names


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and query variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            text = query["query"] if isinstance(query, dict) else query
            exprs.append(re.fullmatch(r"label_values\((\w+),\s*\w+\)", text).group(1))
    return exprs


class DashboardTests(TestCase):
    timeout = 180

    def test_the_parser(self):
        """metric_names finds metric names, not functions, labels, keywords or Grafana's variables."""
        expr = ('histogram_quantile(0.99, sum by (le, operation) (rate(chatd_a_bucket{job=~"$job",x="y z"}'
                '[$__rate_interval]))) / on (worker) chatd_b + sum without (k) (chatd_c offset 5m)')
        self.assertEqual(metric_names(expr), {"chatd_a_bucket", "chatd_b", "chatd_c"})

    def test_the_dashboards_shape(self):
        """The dashboard takes its Prometheus datasource as a variable and shows what the README names."""
        dashboard = json.loads(DASHBOARD.read_text())
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        self.assertEqual((variables["datasource"]["type"], variables["datasource"]["query"]), ("datasource", "prometheus"))
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        self.assertTrue(all(p["datasource"]["uid"] == "${datasource}" for p in panels))
        titles = " ".join(p["title"] for p in panels).lower()
        for what in ("connections", "users online", "stored", "delivered", "delivery latency", "store latency",
                     "slow consumers", "rate limited", "http requests"):
            self.assertIn(what, titles)
        self.assertIn("histogram_quantile", " ".join(dashboard_exprs()))

    async def test_every_queried_metric_exists(self):
        """After traffic, /metrics of twistd chatd --workers 2 has every metric the dashboard queries."""
        names = set().union(*(metric_names(e) for e in dashboard_exprs()))
        self.assertGreaterEqual(len(names), 10)
        exposition = await self._scrape_after_traffic()
        samples = {s.name for family in text_string_to_metric_families(exposition) for s in family.samples}
        self.assertEqual(names - samples, set(), "metrics the dashboard queries that chatd does not export")

    async def _scrape_after_traffic(self) -> str:
        directory = Path(tempfile.mkdtemp(prefix="chatd-dashboard-"))
        self.addCleanup(shutil.rmtree, directory, True)
        port = free_loopback_port()
        log = open(directory / "chatd.log", "wb")
        self.addCleanup(log.close)
        process = subprocess.Popen(
            TWISTD + ["-n", "--pidfile=", "chatd", "--workers", "2", "--data-dir", str(directory / "data"),
                      "--listen", f"tcp:{port}:interface=127.0.0.1", "--auth-rate", "1/s,1",
                      "--max-sockets-per-user", "1"],
            cwd=ROOT, env={**os.environ, "CHATD_BCRYPT_COST": "4"}, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)

        self.addCleanup(stop)
        base = f"http://127.0.0.1:{port}"
        http = Client(base)
        await wait_for_health(http, process)
        # Some of these are refused by the auth rate (429: rate_limited{kind="http"}); two get through.
        sessions, statuses = [], []
        for i in range(12):
            response = await http.request("POST", "/api/auth/register", {
                "username": f"user{i}", "email": f"user{i}@example.com", "password": "correct horse"})
            statuses.append(response.status)
            if response.status == 201:
                sessions.append(response.json())
            if len(sessions) == 2 and 429 in statuses:
                break
        self.assertIn(429, statuses)
        a = await joined(base, sessions[0]["token"], test=self)
        b = await joined(base, sessions[1]["token"], test=self)
        a.send({"type": "message", "room": "lobby", "text": "hi"})
        await b.next("message")
        # A second socket for a user is refused by --max-sockets-per-user 1 on the worker holding the first;
        # sockets land on either worker, so open a few (chatd_limit_refusals{limit="sockets_per_user"}).
        for _ in range(16):  # each lands on the first socket's worker with odds 1/2
            try:
                extra = await connect(base, sessions[0]["token"])
                await extra.close()
            except ConnectionRefused:
                break
        else:
            self.fail("no second socket was refused")
        # The figures of a worker are its own: scrape until both workers' series are in one page.
        page = ""

        async def scraped():
            nonlocal page
            page = (await http.request("GET", "/metrics")).body.decode()
            return 'chatd_worker_up{worker="1"} 1.0' in page and 'chatd_worker_up{worker="2"} 1.0' in page

        await wait_until(scraped, 20, "both workers in /metrics")
        await a.close()
        await b.close()
        return page
