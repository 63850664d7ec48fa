"""``--log-format json``: one flat JSON object per log line, for journald, Loki, Elasticsearch and the like.

Each line is::

    {"time": "2026-05-01T10:00:00.123Z", "level": "info", "namespace": "chatd.web.site",
     "system": "-", "message": "listening on tcp 0.0.0.0:8080", "kind": "tcp", "host": "0.0.0.0", "port": 8080}

``time`` (ISO 8601, UTC), ``level`` (debug, info, warn, error, critical), ``namespace``,
``system`` (``worker 2: …`` for a ``--workers`` worker's event, which also has ``worker``),
``message`` (the event formatted as the text log shows it) and, for an error with a
traceback, ``failure`` (the traceback as text). Then the event's own fields, but only
those named in :data:`SAFE_FIELDS` and only as plain values: an event carries every
keyword its caller passed, and a deny-list would let a new one (a request, a header, a
token) through the day someone logs it. A ``path`` field loses its query string.

Why not ``jsonFileLogObserver`` as it is: its records start with an RS byte, nest the
failure, and hold every field of the event (``log_format``, ``log_source``, whatever was
passed). It stays what workers send their parent (:mod:`chatd.workers.logs`); this module
reuses its :class:`FileLogObserver` and Twisted's ``formatEvent``, and only chooses the fields.

Under ``twistd`` the observer is installed through twistd's ``--logger``, which takes a
name, not an object: :func:`use_for_twistd` (called by the plugin's options) sets that
name and notes where twistd would have written (``--logfile``, or standard output with
``-n``), and :func:`twistd_observer` is what twistd then calls.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone

from twisted.logger import FileLogObserver, formatEvent
from twisted.python.logfile import LogFile

FORMATS = ("text", "json")

# Fields chatd's (and twistd's) events carry that are safe and worth querying on. Adding a name
# here is a decision: its value must never be a secret, a header or a URL with a query.
SAFE_FIELDS = frozenset({
    "admin", "count", "delay", "grace", "host", "index", "kind", "method", "owner", "path", "pid", "port",
    "role", "room", "seconds", "seq", "silence", "status", "tries", "user_id", "worker", "workers",
})
_KEYS = ("time", "level", "namespace", "system", "message", "failure")  # ours: an event field cannot replace them
_LONGEST = 2000  # characters of one field's text


def _time(event: dict) -> str:
    stamp = event.get("log_time")
    if not isinstance(stamp, (int, float)):
        return ""
    moment = datetime.fromtimestamp(stamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _value(key: str, value):
    """A safe field's value as JSON: numbers, booleans and text as they are, anything else (NaN too) as its text."""
    if value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        value = str(value)
    if key == "path":
        value = value.split("?", 1)[0]
    return value[:_LONGEST]


def event_as_line(event: dict) -> str:
    """``event`` as one line of JSON (with its newline); see the module's docstring for the keys."""
    level = event.get("log_level")
    record = {
        "time": _time(event),
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace") or "-",
        "system": str(event.get("log_system") or "-"),
        "message": formatEvent(event),
    }
    failure = event.get("log_failure")
    if failure is not None:
        try:
            record["failure"] = failure.getTraceback()
        except Exception:  # a failure rebuilt from a worker's JSON may lack its frames
            record["failure"] = str(getattr(failure, "value", failure))
    for key in sorted(SAFE_FIELDS.intersection(event)):
        if key not in _KEYS:
            record[key] = _value(key, event[key])
    return json.dumps(record, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def json_observer(stream) -> FileLogObserver:
    """An observer writing :func:`event_as_line` lines to ``stream`` (a text file)."""
    return FileLogObserver(stream, event_as_line)


# Where twistd would have written its text log, noted by use_for_twistd for twistd_observer.
_twistd_destination: dict = {}


def use_for_twistd(twistd_options) -> None:
    """Make twistd log as JSON: fill its ``--logger`` (unless given) with :func:`twistd_observer`.

    Called from the plugin's ``postOptions`` with twistd's own options (the plugin's
    ``parent``), before twistd reads them. An explicit ``--logger`` wins (a
    ``--workers`` worker has one: it sends its events to its parent, which formats them).
    """
    if twistd_options.get("logger") or twistd_options.get("syslog"):
        return  # --syslog: syslog takes text lines
    twistd_options["logger"] = f"{__name__}.twistd_observer"
    _twistd_destination.update(logfile=twistd_options.get("logfile"), nodaemon=bool(twistd_options.get("nodaemon")))


def twistd_observer() -> FileLogObserver:
    """The JSON observer where twistd would have written: standard output with ``-n`` and no
    ``--logfile`` (or ``--logfile -``), else the log file (``twistd.log`` by default)."""
    name = _twistd_destination.get("logfile")
    if name == "-" or (not name and _twistd_destination.get("nodaemon", True)):
        if not _twistd_destination.get("nodaemon", True):
            sys.exit("Daemons cannot log to stdout, exiting!")  # what twistd says too
        return json_observer(sys.stdout)
    return json_observer(LogFile.fromFullPath(name or "twistd.log"))
