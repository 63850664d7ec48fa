"""The REST API under ``/api`` (SPEC.md's table), one module of Klein routes per resource.

Each route authenticates first (SPEC.md: before the body is validated), parses
the body, calls the domain and renders the result; every failure is rendered by
:func:`chatd.web.api.common.render_failure`, so clients always get SPEC.md's
error body (and a 503 whenever the store could not be reached).
"""
