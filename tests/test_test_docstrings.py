"""The test suite keeps its own rules (STYLE.md §7-8): every test says in a docstring which behaviour it
covers, and no coroutine test sits where trial would never run it.

Docstrings are read from the source (``ast``), so a test module is checked even where it could not be
imported; the coroutine check imports the modules, as trial does, to see each test class's real bases.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase, TestCase

import tests

TESTS = Path(tests.__file__).resolve().parent
PREFIX = "test"  # trial's methodPrefix: every method of a test class whose name starts with it is a test


def scanned(source: str):
    """(class name, method name, line, docstring or None) of every test method in a module's source."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith(PREFIX):
                    yield node.name, item.name, item.lineno, ast.get_docstring(item)


def undocumented(paths) -> list[str]:
    """``file:line Class.method`` of each test method without a docstring (or with a blank one)."""
    return [f"{path.name}:{line} {cls}.{name}"
            for path in paths
            for cls, name, line, doc in scanned(path.read_text(encoding="utf-8"))
            if not (doc and doc.strip())]


def suite_files() -> list[Path]:
    """The test modules trial runs from tests/."""
    return sorted(TESTS.glob("test_*.py"))


class DocstringTests(SynchronousTestCase):
    def test_every_test_has_a_docstring(self):
        """Every test method in tests/test_*.py has a docstring saying what it covers; the scan finds the
        suite's tests (hundreds), so it cannot pass by finding none."""
        found = sum(1 for path in suite_files() for _ in scanned(path.read_text(encoding="utf-8")))
        self.assertGreater(found, 400)
        self.assertEqual(undocumented(suite_files()), [])

    def test_the_scan_finds_a_test_without_a_docstring(self):
        """The scan reports a test method without a docstring or with a blank one, async or not, also in a
        mixin class; documented tests and helper methods are not reported."""
        path = Path(self.mktemp())
        path.write_text('''
class Mixin:
    async def test_async_bare(self):
        pass

class SomeTests(Mixin):
    def test_documented(self):
        """Says what it covers."""

    def test_blank(self):
        """  """

    def test_bare(self):
        return 1

    def helper(self):
        pass
''', encoding="utf-8")
        self.assertEqual(undocumented([path]), [
            f"{path.name}:3 Mixin.test_async_bare", f"{path.name}:10 SomeTests.test_blank",
            f"{path.name}:13 SomeTests.test_bare"])


class CoroutineTests(SynchronousTestCase):
    def test_no_coroutine_test_in_a_synchronous_test_case(self):
        """An ``async def`` test in a SynchronousTestCase is never awaited, so it passes without running
        (STYLE.md §7): every coroutine test belongs to a trial ``TestCase``."""
        silent = []
        for module in pkgutil.iter_modules([str(TESTS)]):
            if not module.name.startswith("test_"):
                continue
            for name, cls in vars(importlib.import_module(f"tests.{module.name}")).items():
                if inspect.isclass(cls) and issubclass(cls, SynchronousTestCase) and not issubclass(cls, TestCase):
                    silent += [f"{module.name}.{name}.{attr}" for attr in dir(cls)
                               if attr.startswith(PREFIX) and inspect.iscoroutinefunction(getattr(cls, attr))]
        self.assertEqual(silent, [])
