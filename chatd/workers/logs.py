"""A worker's log, relayed through its parent.

A worker logs what any chatd logs, but not to a file of its own: twistd's
``--logger`` option makes :func:`worker_observer` its one observer, which writes
each event as JSON (Twisted's ``jsonFileLogObserver``) to the worker's standard
output, a pipe to the parent. The parent's :class:`WorkerLogRelay` reads the
events back and hands them to the parent's own observers (its log file or its
standard output, as twistd set them up) with the worker in their system::

    2026-05-01T10:00:00+0000 [worker 2: chatd.web.site.ListeningService#info] listening on tcp 0.0.0.0:8080

The events keep their time and level. Whatever a worker writes to its standard
error outside the log (a crash before logging started) is logged line by line
as a warning, ``[worker 2 stderr]``.
"""

from __future__ import annotations

import os

from twisted.logger import LogLevel, Logger, eventFromJSON, globalLogPublisher, jsonFileLogObserver

# Keys of an event that do not survive JSON (the worker's objects) and would mislead an observer here.
_WORKER_OBJECTS = ("log_logger", "log_source", "log_legacy", "log_observer")


def worker_observer():
    """The log observer of a worker (``twistd --logger=chatd.workers.logs.worker_observer``).

    It writes to a copy of the standard output taken now, before twistd
    redirects ``sys.stdout`` into the log.
    """
    return jsonFileLogObserver(open(os.dup(1), "w", encoding="utf-8"))


class WorkerLogRelay:
    """Turns the bytes worker ``index`` writes (events on fd 1, text on fd 2) into events of this process."""

    def __init__(self, index: int, publish=globalLogPublisher) -> None:
        self.index = index
        self._publish = publish
        self._log = Logger(namespace=__name__, observer=publish)
        self._events = b""
        self._errors = b""

    def events(self, data: bytes) -> None:
        """JSON event records (RS, JSON, newline) from the worker's standard output."""
        self._events += data
        *records, self._events = self._events.split(b"\n")
        for record in records:
            self._event(record)

    def errors(self, data: bytes) -> None:
        """Text from the worker's standard error, logged a line at a time."""
        self._errors += data
        *lines, self._errors = self._errors.split(b"\n")
        for line in lines:
            self._error(line)

    def flush(self) -> None:
        """Log what is left unterminated (the worker exited mid-line)."""
        events, self._events = self._events, b""
        errors, self._errors = self._errors, b""
        if events.strip():
            self._event(events)
        if errors.strip():
            self._error(errors)

    def _event(self, record: bytes) -> None:
        text = record.lstrip(b"\x1e").decode("utf-8", "replace").strip()
        if not text:
            return
        try:
            event = eventFromJSON(text)
            if not isinstance(event, dict) or not isinstance(event.get("log_level"), type(LogLevel.info)):
                raise ValueError("not a log event")
        except ValueError:  # not one of our records (a stray print before logging began): keep it as text
            self._error(record)
            return
        for key in _WORKER_OBJECTS:
            event.pop(key, None)
        system = event.get("log_system")
        if system is None:
            system = f"{event.get('log_namespace', '-')}#{event['log_level'].name}"
        event["log_system"] = f"worker {self.index}: {system}"
        event["worker"] = self.index  # a field of its own in --log-format json
        self._publish(event)

    def _error(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            self._log.warn("{line}", line=text, log_system=f"worker {self.index} stderr", worker=self.index)
