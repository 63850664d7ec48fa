"""Unit tests for chatd.jsonlog: the JSON line of an event, and how ``--log-format json`` reaches twistd."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile

from twisted.logger import LogLevel, Logger
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.scripts.twistd import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from chatd import jsonlog
from chatd.tap import Options

T0 = 1777629600.25  # 2026-05-01T10:00:00.250Z


def line_of(**event) -> dict:
    """The JSON object for one event logged by a ``Logger`` (so it has every key twisted adds)."""
    events: list[dict] = []
    log = Logger(namespace="chatd.test", observer=events.append)
    level = event.pop("level", LogLevel.info)
    fmt = event.pop("fmt", "hello {who}")
    failure = event.pop("failure", None)
    if failure is not None:
        log.failure(fmt, failure, level=level, **event)
    else:
        log.emit(level, fmt, **event)
    events[0]["log_time"] = T0
    text = jsonlog.event_as_line(events[0])
    assert text.endswith("\n") and "\n" not in text[:-1], text
    return json.loads(text)


class LineTests(SynchronousTestCase):
    """One event → one flat JSON object a log shipper can read."""

    def test_the_fixed_keys(self):
        """time in ISO 8601 UTC with milliseconds, level, namespace, system and the formatted message."""
        record = line_of(who="world")
        self.assertEqual(record, {"time": "2026-05-01T10:00:00.250Z", "level": "info", "namespace": "chatd.test",
                                  "system": "-", "message": "hello world"})

    def test_levels_by_their_names(self):
        """Each twisted.logger level appears by its name."""
        for level in (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical):
            self.assertEqual(line_of(level=level, who="x")["level"], level.name)

    def test_safe_fields_kept_as_values(self):
        """Allow-listed fields keep their JSON type; bytes become text; a path loses its query string."""
        record = line_of(fmt="a request on {port}", method=b"GET", path=b"/ws?token=abc.def.ghi", port=8080,
                         room="lobby", seq=7, worker=2)
        self.assertEqual((record["method"], record["path"], record["port"]), ("GET", "/ws", 8080))
        self.assertEqual((record["room"], record["seq"], record["worker"]), ("lobby", 7, 2))
        self.assertEqual(record["message"], "a request on 8080")
        self.assertNotIn("abc", json.dumps(record))

    def test_other_fields_left_out(self):
        """Fields off the allow-list (a token, a header, a request, twisted's log_* keys) never appear."""
        record = line_of(fmt="signed in", token="eyJ.secret.sig", password="hunter22", authorization="Bearer x",
                         cookie="s=1", query=b"token=1", request=object(), headers={"a": "b"})
        self.assertEqual(set(record), {"time", "level", "namespace", "system", "message"})
        text = json.dumps(record)
        for secret in ("eyJ", "hunter22", "Bearer", "s=1", "token=1", "log_"):
            self.assertNotIn(secret, text)

    def test_values_json_cannot_hold(self):
        """A safe field holding an object is written as its text; NaN and huge text do not break the line."""

        class Odd:
            def __str__(self):
                return "odd thing"

        record = line_of(fmt="odd", room=Odd(), seconds=float("nan"), owner="x" * 10_000)
        self.assertEqual(record["room"], "odd thing")
        self.assertEqual(record["seconds"], "nan")
        self.assertEqual(len(record["owner"]), 2000)
        record = line_of(fmt="unformattable {missing}")
        self.assertIn("Unable to format event", record["message"])

    def test_failure_traceback_as_a_field(self):
        """An error's traceback is one ``failure`` field (newlines escaped), not lines of its own."""
        try:
            1 / 0
        except ZeroDivisionError:
            failure = Failure()
        record = line_of(fmt="storing {room} failed", failure=failure, room="lobby", level=LogLevel.critical)
        self.assertEqual((record["level"], record["message"]), ("critical", "storing lobby failed"))
        self.assertIn("Traceback", record["failure"])
        self.assertIn("ZeroDivisionError", record["failure"])

    def test_a_workers_failure_relayed_through_the_parent(self):
        """A worker's error, sent to its parent as Twisted's JSON and relayed, keeps its traceback and worker."""
        from twisted.logger import eventAsJSON

        from chatd.workers.logs import WorkerLogRelay

        try:
            {}["missing"]
        except KeyError:
            worker_events: list[dict] = []
            Logger(namespace="chatd.chat.writer", observer=worker_events.append).failure(
                "storing messages in {room} failed", room="lobby", token="eyJ.never.logged")
        relayed: list[dict] = []
        relay = WorkerLogRelay(3, publish=relayed.append)
        relay.events(b"\x1e" + eventAsJSON(worker_events[0]).encode() + b"\n")
        record = json.loads(jsonlog.event_as_line(relayed[0]))
        self.assertEqual((record["level"], record["worker"], record["room"]), ("critical", 3, "lobby"))
        self.assertEqual(record["message"], "storing messages in lobby failed")
        self.assertTrue(record["system"].startswith("worker 3: "))
        self.assertIn("KeyError", record["failure"])
        self.assertNotIn("eyJ", json.dumps(record))

    def test_an_event_field_cannot_replace_the_fixed_keys(self):
        """A caller's ``message`` or ``time`` field does not overwrite the record's own."""
        record = line_of(fmt="real", message="fake", time="never", level_name="x")
        self.assertEqual((record["message"], record["time"]), ("real", "2026-05-01T10:00:00.250Z"))

    def test_observer_writes_lines(self):
        """json_observer writes one line per event to its stream."""
        stream = io.StringIO()
        log = Logger(namespace="chatd.test", observer=jsonlog.json_observer(stream))
        log.info("one")
        log.warn("two {room}", room="r")
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        self.assertEqual([(r["level"], r["message"]) for r in lines], [("info", "one"), ("warn", "two r")])


def twistd_options(*argv: str) -> ServerOptions:
    """twistd's options after parsing ``argv`` (the chatd plugin's own options included)."""
    options = ServerOptions()
    options.parseOptions(list(argv))
    return options


class TwistdTests(SynchronousTestCase):
    """``twistd chatd --log-format json`` makes twistd's one observer the JSON one."""

    def setUp(self):
        self.addCleanup(jsonlog._twistd_destination.clear)

    def test_text_by_default(self):
        """Without the option twistd keeps its own text log."""
        options = twistd_options("-n", "chatd")
        self.assertIsNone(options["logger"])
        self.assertEqual(options.subOptions.config.log_format, "text")

    def test_json_sets_twistds_logger(self):
        """--log-format json (or CHATD_LOG_FORMAT=json) names jsonlog's observer as twistd's --logger."""
        for argv, environ in [(("-n", "chatd", "--log-format", "json"), {}),
                              (("-n", "chatd"), {"CHATD_LOG_FORMAT": "json"})]:
            self.patch(os, "environ", {**os.environ, **environ})  # the plugin's options read os.environ
            options = twistd_options(*argv)
            self.assertIs(options["logger"], jsonlog.twistd_observer)
            self.assertEqual(options.subOptions.config.log_format, "json")

    def test_an_explicit_logger_wins(self):
        """A --logger given to twistd (a worker's) is kept."""
        options = twistd_options("--logger=chatd.workers.logs.worker_observer", "-n", "chatd", "--log-format", "json")
        self.assertEqual(options["logger"].__name__, "worker_observer")

    def test_bad_format_refused(self):
        """Anything but text or json is a usage error naming the option."""
        with self.assertRaises(UsageError) as caught:
            Options(environ={}).parseOptions(["--log-format", "xml"])
        self.assertIn("--log-format", str(caught.exception))

    def test_destination_is_where_twistd_would_write(self):
        """-n: standard output; --logfile FILE: that file, as JSON lines."""
        twistd_options("-n", "chatd", "--log-format", "json")
        self.assertIs(jsonlog.twistd_observer()._outFile, sys.stdout)
        path = os.path.join(tempfile.mkdtemp(), "chatd.log")
        twistd_options("-n", "--logfile", path, "chatd", "--log-format", "json")
        observer = jsonlog.twistd_observer()
        Logger(namespace="chatd.test", observer=observer).info("to the file")
        observer._outFile.close()
        with open(path) as f:
            self.assertEqual(json.loads(f.readline())["message"], "to the file")
