"""The user's reference stays true to the code: docs/API.md, docs/PROTOCOL.md and README.md.

What chatd serves, sends and accepts is read from the code itself (the Klein url map, the frame parser's
table, the frames and error codes written in the source, the options table), never from a list typed into
this test, so a route, frame, code or option added without its documentation fails here. The other way
round, the documents may not describe a route or frame chatd does not have.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import chatd
import chatd.web.api.resource  # noqa: F401  (imports every group of routes)
from chatd import tap
from chatd.chat import frames
from chatd.web.api.common import Routes

PACKAGE = Path(chatd.__file__).resolve().parent
ROOT = PACKAGE.parent
DOCS = ROOT / "docs"

# Sanity floors: what each scan must find at the least, so that a broken scan cannot pass by finding nothing.
KNOWN_SERVER_FRAMES = {"hello", "joined", "left", "message", "ack", "presence", "typing", "read", "edited",
                       "deleted", "error", "pong", "refreshed"}
KNOWN_SOCKET_ERRORS = {"invalid_json", "invalid_frame", "unknown_type", "not_in_room", "too_large",
                       "rate_limited", "forbidden", "unavailable", "internal"}
KNOWN_CLOSE_CODES = {1001, 1008, 4001, 4003, 4008}
KNOWN_API_ERRORS = {"invalid_request", "unauthorized", "forbidden", "not_found", "method_not_allowed", "conflict",
                    "too_large", "unsupported_media_type", "rate_limited", "internal", "unavailable"}
# Served beside the Klein app (chatd.service mounts them in the site).
OPERATIONS_ROUTES = {"GET /healthz", "GET /metrics"}

_FRAME_PREFIX = re.compile(r'\{"type":"([a-z_]+)"')


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    """The body of the ``## title`` section, up to the next heading of level 2 (or the end)."""
    match = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise AssertionError(f"no '## {title}' section")
    return match.group(1)


def _headed_names(section: str) -> set[str]:
    """Names given as ``### `name` `` headings (any level below 2) in a section."""
    return set(re.findall(r"^#{3,6} `([a-z_]+)`[ \t]*$", section, re.MULTILINE))


def _table_keys(section: str, pattern: str) -> set[str]:
    """What the first cells (matched by ``pattern``) of a section's table rows hold."""
    return set(re.findall(rf"^\|\s*{pattern}\s*\|", section, re.MULTILINE))


def _calls_named(tree: ast.AST, name: str):
    """Every call of ``name`` or ``something.name`` in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called == name:
                yield node


@functools.cache
def _modules() -> list[tuple[Path, ast.Module]]:
    """Every module of the package, parsed (once per test run)."""
    return [(path, ast.parse(_read(path), str(path))) for path in sorted(PACKAGE.rglob("*.py"))]


def server_frame_types() -> set[str]:
    """Every frame ``type`` chatd writes: ``{"type": ...}`` dict literals, and JSON built as text or bytes
    (``b'{"type":"message",'``, the f-string of ``ack``), anywhere in the package."""
    found = set()
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "type" \
                            and isinstance(value, ast.Constant) and isinstance(value.value, str):
                        found.add(value.value)
            elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
                match = _FRAME_PREFIX.match(text)
                if match:
                    found.add(match.group(1))
    return found


def socket_error_codes() -> set[str]:
    """The codes of every ``FrameError(...)`` and ``error_frame(...)`` written with a literal code."""
    found = set()
    for _, tree in _modules():
        for name in ("FrameError", "error_frame"):
            for call in _calls_named(tree, name):
                code = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "code"), None)
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    found.add(code.value)
    return found


def close_codes() -> dict[str, int]:
    """Every ``CLOSE_* = <number>`` constant in the package."""
    found = {}
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, int):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.startswith("CLOSE_"):
                        found[target.id] = node.value.value
    return found


def api_error_codes() -> tuple[set[str], list[str]]:
    """The ``code`` of every ``ApiError(...)`` (errors.py's constructors and any built elsewhere), and
    where a call names its code in a way this scan cannot read."""
    found, unreadable = set(), []
    for path, tree in _modules():
        for call in _calls_named(tree, "ApiError"):
            code = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "code"), None)
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                found.add(code.value)
            else:
                unreadable.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    return found, unreadable


def api_routes() -> set[str]:
    """``METHOD /api/path`` for every rule of every group of routes (each a Klein app), placeholders
    written ``{name}``."""
    groups = Routes.__subclasses__()
    assert len(groups) >= 4, groups  # auth, users, rooms, files: the scan must find them
    routes = set()
    for rule in (rule for group in groups for rule in group.app.url_map.iter_rules()):
        path = "/api" + re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.update(f"{method} {path}" for method in rule.methods if method not in ("HEAD", "OPTIONS"))
    return routes


class ProtocolDocumentTests(SynchronousTestCase):
    """docs/PROTOCOL.md names every frame, error code and close code the socket has, and no others."""

    def setUp(self):
        self.text = _read(DOCS / "PROTOCOL.md")

    def test_server_frames(self):
        """Every frame type chatd sends has its own heading under 'Server frames', and every heading there
        is a frame chatd really sends."""
        sent = server_frame_types()
        self.assertEqual(KNOWN_SERVER_FRAMES - sent, set(), "the source scan missed frames it must find")
        documented = _headed_names(_section(self.text, "Server frames"))
        self.assertEqual(sent - documented, set(), "frames chatd sends that PROTOCOL.md does not describe")
        self.assertEqual(documented - sent, set(), "frames PROTOCOL.md describes that chatd never sends")

    def test_client_frames(self):
        """Every frame type the parser accepts has its own heading under 'Client frames', and no other."""
        accepted = set(frames._PARSERS)
        self.assertIn("join", accepted)
        documented = _headed_names(_section(self.text, "Client frames"))
        self.assertEqual(accepted - documented, set(), "client frames PROTOCOL.md does not describe")
        self.assertEqual(documented - accepted, set(), "client frames PROTOCOL.md describes that chatd refuses")

    def test_error_codes(self):
        """Every socket error code in the source is a row of the 'Error codes' table, and every row is one."""
        codes = socket_error_codes()
        self.assertEqual(KNOWN_SOCKET_ERRORS - codes, set(), "the source scan missed error codes it must find")
        documented = _table_keys(_section(self.text, "Error codes"), r"`([a-z_]+)`")
        self.assertEqual(codes - documented, set(), "socket error codes PROTOCOL.md does not list")
        self.assertEqual(documented - codes, set(), "error codes PROTOCOL.md lists that chatd never sends")

    def test_close_codes(self):
        """Every CLOSE_* constant's code is a row of the 'Close codes' table."""
        codes = set(close_codes().values())
        self.assertEqual(KNOWN_CLOSE_CODES - codes, set(), "the source scan missed close codes it must find")
        documented = {int(code) for code in _table_keys(_section(self.text, "Close codes"), r"`(\d{4})`")}
        self.assertEqual(codes - documented, set(), "close codes PROTOCOL.md does not list")


class ApiDocumentTests(SynchronousTestCase):
    """docs/API.md names every route and every REST error code, and no route chatd lacks."""

    def setUp(self):
        self.text = _read(DOCS / "API.md")

    def test_routes(self):
        """Every route of the Klein app, and /healthz and /metrics, appears as `METHOD /path` (with the
        code's placeholder names), and every route heading names a real route."""
        served = api_routes() | OPERATIONS_ROUTES
        self.assertIn("GET /api/rooms/{room}/messages", served)
        mentioned = set(re.findall(r"`((?:GET|POST|PUT|PATCH|DELETE) /[^`\s]*)`", self.text))
        self.assertEqual(served - mentioned, set(), "routes API.md does not describe")
        headed = set(re.findall(r"^#{2,6} .*?`((?:GET|POST|PUT|PATCH|DELETE) /[^`\s]*)`", self.text, re.MULTILINE))
        self.assertEqual(headed - served, set(), "route headings in API.md that chatd does not serve")

    def test_error_codes(self):
        """Every ApiError code in the source is a row of the 'Errors' table, and every row is one."""
        codes, unreadable = api_error_codes()
        self.assertEqual(unreadable, [], "ApiError calls whose code is not a literal: the docs check cannot see them")
        self.assertEqual(KNOWN_API_ERRORS - codes, set(), "the source scan missed error codes it must find")
        documented = _table_keys(_section(self.text, "Errors"), r"\d{3}\s*\|\s*`([a-z_]+)`")
        self.assertEqual(codes - documented, set(), "REST error codes API.md does not list")
        self.assertEqual(documented - codes, set(), "error codes API.md lists that chatd never answers")

    def test_limits_section(self):
        """API.md has a Limits section naming every rate or size option of chatd."""
        limits = _section(self.text, "Limits")
        for name in tap._PARAMETERS:
            if re.search(r"rate|max|quota", name):
                self.assertIn(f"`--{name}`", limits)


class ReadmeTests(SynchronousTestCase):
    """README.md sends readers to the documents in the repository and lists every option."""

    def setUp(self):
        self.text = _read(ROOT / "README.md")

    def test_links_the_reference(self):
        """The README links docs/API.md and docs/PROTOCOL.md, and no longer points at shared/ or SPEC.md,
        which a clone of the repository does not have."""
        self.assertIn("](docs/API.md)", self.text)
        self.assertIn("](docs/PROTOCOL.md)", self.text)
        self.assertNotIn("shared/", self.text)
        self.assertNotIn("SPEC.md", self.text)

    def test_every_option_configured(self):
        """Every option of `twistd chatd` (and --listen) is a row of the Configure table, with its variable."""
        options = {name: variable for name, (variable, _, _) in tap._PARAMETERS.items()}
        self.assertIn("token-ttl", options)
        options["listen"] = "CHATD_LISTEN"
        rows = [line for line in _section(self.text, "Configure it").splitlines() if line.startswith("|")]
        missing = [f"--{name} ({variable})" for name, variable in options.items()
                   if not any(f"`--{name}`" in row and f"`{variable}`" in row for row in rows)]
        self.assertEqual(missing, [], "options missing from README's Configure table")


class LinkTests(SynchronousTestCase):
    """Relative links between the documents lead somewhere."""

    def test_relative_links_resolve(self):
        """Every relative Markdown link in README.md, docs/API.md and docs/PROTOCOL.md names an existing file."""
        broken = []
        for document in (ROOT / "README.md", DOCS / "API.md", DOCS / "PROTOCOL.md"):
            for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", _read(document)):
                if "://" not in target and not (document.parent / target).exists():
                    broken.append(f"{document.name}: {target}")
        self.assertEqual(broken, [])
