"""Holding chatd/web/openapi.json to the server: its routing table, and the answers a real chatd gives.

``site_routes`` reads the routes a running site really has (the Klein url_maps
under ``/api``, as ``ApiResource`` dispatches to them, and the plain resources
beside it); ``Recorder`` drives a real chatd and remembers every (method, path
template, status, body) it saw; ``answer_problems`` says which of those the
description does not allow.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from chatd.web.api.resource import ApiResource

DOCUMENT = Path(__file__).resolve().parent.parent / "chatd" / "web" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Not REST: the WebSocket (docs/PROTOCOL.md). HEAD is implied by GET, OPTIONS answered by CORS for any path.
NOT_REST = {"/ws"}
IMPLIED = {"HEAD", "OPTIONS"}
_URI = "urn:chatd:openapi"
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def load() -> dict:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def template(rule: str) -> str:
    """A werkzeug rule (``/rooms/<room>``) as an OpenAPI path template (``/rooms/{room}``)."""
    return _PARAM.sub(r"{\1}", rule)


def site_routes(site) -> set[tuple[str, str]]:
    """(METHOD, template) of every route the site answers, but the page and the WebSocket."""
    routes = set()
    for name, child in site.resource.children.items():
        path = "/" + name.decode("ascii")
        if path in NOT_REST:
            continue
        if isinstance(child, ApiResource):
            routes |= _api_routes(child)
        else:
            methods = {attr[len("render_"):] for attr in dir(child) if attr.startswith("render_")}
            # A WSGI app (/metrics, prometheus_client's) has no render_* and takes any method; GET is its use.
            methods = methods or {"GET"}
            routes |= {(method, path) for method in methods - IMPLIED}
    return routes


def _api_routes(api: ApiResource) -> set[tuple[str, str]]:
    routes = set()
    for group in api.groups():
        for rule in group._app.url_map.iter_rules():
            segments = [b"x" if part.startswith("<") else part.encode() for part in rule.rule.strip("/").split("/")]
            if api.group_for(segments) is not group:
                continue  # a route of a group that no /api path reaches
            routes |= {(method, "/api" + template(rule.rule)) for method in rule.methods - IMPLIED}
    return routes


def described_routes(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}


def path_parameter_problems(doc: dict) -> list[str]:
    """Templates whose ``{name}``s differ from the path parameters described for them."""
    problems = []
    for path, item in doc["paths"].items():
        in_path = set(re.findall(r"{([^}]+)}", path))
        for method in (m for m in item if m in METHODS):
            declared = {_resolve(doc, p)["name"] for p in item.get("parameters", []) + item[method].get("parameters", [])
                        if _resolve(doc, p)["in"] == "path"}
            if declared != in_path:
                problems.append(f"{method.upper()} {path}: path parameters {sorted(declared)} for {sorted(in_path)}")
    return problems


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        node = _at(doc, node["$ref"][1:])
    return node


def _at(doc: dict, pointer: str):
    node = doc
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class Recorder:
    """A harness Client that remembers what it saw: (METHOD, template, status, content type, body)."""

    def __init__(self, client) -> None:
        self._client = client
        self.seen: list[tuple[str, str, int, str, bytes]] = []
        self.surprises: list[str] = []

    async def call(self, method: str, path: str, expect: int, params: dict | None = None, query: str = "", **kwargs):
        """Send, record, and note a status other than ``expect`` (the session then covers less than it says)."""
        url = path.format(**{k: quote(str(v), safe="") for k, v in (params or {}).items()}) + query
        response = await self._client.request(method, url, **kwargs)
        self.seen.append((method, path, response.status, response.header("content-type") or "", response.body))
        if response.status != expect:
            self.surprises.append(f"{method} {url}: {response.status} for {expect} ({response.body[:160]!r})")
        return response


def answer_problems(doc: dict, seen) -> list[str]:
    """Every answer seen that the description does not allow: its status, or its JSON body's shape."""
    registry = Registry().with_resource(_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    problems = []
    for method, path, status, content_type, body in seen:
        operation = doc["paths"].get(path, {}).get(method.lower())
        if operation is None:
            problems.append(f"{method} {path}: not described")
            continue
        where = f"/paths/{_escape(path)}/{method.lower()}/responses/{status}"
        response = operation["responses"].get(str(status))
        if response is None:
            problems.append(f"{method} {path}: {status} not described ({body[:120]!r})")
            continue
        if "$ref" in response:
            where = response["$ref"][1:]
            response = _resolve(doc, response)
        if not content_type.startswith("application/json") or "application/json" not in response.get("content", {}):
            continue
        schema = {"$ref": _URI + "#" + quote(where + "/content/application~1json/schema")}
        errors = list(Draft202012Validator(schema, registry=registry).iter_errors(json.loads(body)))
        problems += [f"{method} {path} {status}: {e.message} at {list(e.absolute_path)}" for e in errors[:3]]
    return problems


def unexercised(doc: dict, seen) -> list[str]:
    """Described operations the session never got a success (2xx) from."""
    succeeded = {(m, p) for m, p, status, _, _ in seen if 200 <= status < 300}
    return sorted(f"{m} {p}" for m, p in described_routes(doc) - succeeded)
