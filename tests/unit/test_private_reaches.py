"""Every reach into another object's private attributes, anywhere in ``service/``, lives in one of
the adapter modules, each with a check that fails loudly when its pinned library changes:
``clients/bidi.py`` (Selenium, websocket-client: tests/unit/test_bidi_pins.py), ``websocket.py``
(simple-websocket: tests/unit/test_websocket.py) and ``clients/standard_transport.py`` (httpx,
httpcore: below). Read from the syntax tree, so that a docstring naming ``x._y`` is not one."""

from __future__ import annotations

import ast
import pathlib

import httpx

from service.clients import standard_transport

SERVICE = pathlib.Path(__file__).resolve().parents[2] / "service"
ADAPTERS = {"clients/bidi.py", "websocket.py", "clients/standard_transport.py"}


def reaches(tree: ast.AST) -> list[tuple[int, str]]:
    """``x._y`` where ``x`` is not ``self`` or ``cls`` (dunders are public)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_module_but_an_adapter_reaches_into_a_private_attribute():
    offenders = [
        f"{path.relative_to(SERVICE)}:{line}: {text}"
        for path in sorted(SERVICE.rglob("*.py"))
        if str(path.relative_to(SERVICE)) not in ADAPTERS
        for line, text in reaches(ast.parse(path.read_text()))
    ]
    assert offenders == []


def test_the_guard_sees_a_reach():
    assert reaches(ast.parse("driver._x\nself._y\nclient._transport._pool\nx.__class__")) == [
        (1, "driver._x"), (3, "client._transport._pool"), (3, "client._transport")]


def test_httpx_and_httpcore_still_have_what_standard_transport_reaches():
    assert standard_transport.check_assumptions() == []


def test_the_httpx_check_notices_another_version(monkeypatch):
    monkeypatch.setattr(httpx, "__version__", "0.99.0")
    assert any("0.99.0" in line for line in standard_transport.check_assumptions())
