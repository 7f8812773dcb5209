"""End-to-end fixtures: the real service under gunicorn, a real test site, real browsers.

Client selection: ``--clients standard,chrome,firefox`` (the tox env decides) and ``--grid``
(browsers on a Selenium Grid in hub + node mode that these fixtures start). A test that takes
the ``client`` argument runs once per selected client kind; ``@pytest.mark.clients("chrome",
"firefox")`` narrows the kinds it applies to. Tests marked ``clientless`` (protocol cases that
do not depend on a client) run in the env that selects ``standard``; ``grid_only`` tests run
only with ``--grid``, ``local_only`` ones only without it. Tests for unselected
kinds are deselected, never skipped.

Browsers are expensive: ``page`` is one open session per (module, client kind), reopened only
if a test ended it. Tests that need a fresh session open their own with ``open_session``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.service import Service
from tests.support.site import Site
from tests.support.wsclient import Session, connect

CLIENTS = ("standard", "chrome", "firefox")
BROWSERS = ("chrome", "firefox")
BROWSER_PROCESS_NAMES = ("chromium", "chrome", "chromedriver", "firefox", "firefox-esr", "geckodriver")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clients", default=",".join(CLIENTS), help="client kinds to test, comma-separated")
    parser.addoption("--grid", action="store_true", help="run the browsers on a Selenium Grid (hub + node)")


def selected_clients(config: pytest.Config) -> set[str]:
    kinds = {kind.strip() for kind in config.getoption("--clients").split(",") if kind.strip()}
    unknown = kinds - set(CLIENTS)
    if unknown:
        raise pytest.UsageError(f"unknown client kinds: {', '.join(sorted(unknown))}")
    return kinds


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "client" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("clients")
        kinds = marker.args if marker else CLIENTS
        metafunc.parametrize("client", kinds, scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = selected_clients(config)
    on_grid = config.getoption("--grid")
    keep, drop = [], []
    for item in items:
        if (item.get_closest_marker("grid_only") and not on_grid) or (item.get_closest_marker("local_only") and on_grid):
            drop.append(item)
            continue
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("client") if callspec else None
        if kind is not None:
            wanted = kind in selected
        elif item.get_closest_marker("clientless"):
            wanted = "standard" in selected
        else:
            wanted = True
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# ------------------------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


@pytest.fixture(scope="session")
def grid(pytestconfig: pytest.Config, logs: Path):
    """A real Selenium Grid (hub + one node) when ``--grid`` is given, else None."""
    if not pytestconfig.getoption("--grid"):
        yield None
        return
    from tests.support.grid import Grid

    # the Grid's queue gives up when the service does (INNDX_NEW_SESSION_TIMEOUT, 30s): no orphans
    with Grid.start(mode="distributed", max_sessions=3, log_dir=logs, request_timeout=30) as running:
        yield running


def service_env(grid, **extra: str) -> dict[str, str]:
    # no warm pool unless a test asks for one: the process checks count every browser of the service
    env = {"INNDX_MAX_BROWSERS": "6", "INNDX_IDLE_TIMEOUT": "10m", "INNDX_POOL_CHROME": "0", "INNDX_POOL_FIREFOX": "0"}
    if grid is not None:
        env["INNDX_SELENIUM_REMOTE_URL"] = grid.url
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def service(grid, logs: Path) -> Iterator[Service]:
    """The service as users run it (gunicorn, the project's config), private networks allowed."""
    with Service(env=service_env(grid), log_dir=logs) as running:
        yield running


@pytest.fixture()
def start_service(grid, logs: Path) -> Iterator[Callable[..., Service]]:
    """Start an extra service with its own settings; stopped at the end of the test."""
    started: list[Service] = []

    def start(private_networks: bool = True, **env: str) -> Service:
        running = Service(env=service_env(grid, **env), log_dir=logs, private_networks=private_networks).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# ------------------------------------------------------------------------------- sessions


@pytest.fixture()
def open_session(service: Service) -> Iterator[Callable[..., Session]]:
    """``open_session(client, **open_fields)`` -> an open Session, closed at teardown."""
    sessions: list[Session] = []

    def open_(client: str = "standard", ws_url: str | None = None, **fields) -> Session:
        session = connect(ws_url or service.ws_url)
        sessions.append(session)
        session.open(client=client, **fields)
        return session

    yield open_
    for session in sessions:
        _close_quietly(session)


def _close_quietly(session: Session) -> None:
    with contextlib.suppress(Exception):
        if session.close_code is None:
            session.send({"action": "close"})
            session.recv(timeout=15)
    session.close()


class _ModuleSessions:
    """One session per client kind for a whole test module; reopened if a test ended it."""

    def __init__(self, service: Service):
        self.service = service
        self.sessions: dict[str, Session] = {}

    def get(self, client: str) -> Session:
        for kind in [kind for kind in self.sessions if kind != client]:
            _close_quietly(self.sessions.pop(kind))  # tests come grouped by kind: free the browser
        session = self.sessions.get(client)
        if session is None or session.close_code is not None:
            if session is not None:
                session.close()
            session = connect(self.service.ws_url)
            session.open(client=client, timeout="20s", max_retries=0)
            self.sessions[client] = session
        return session

    def close(self) -> None:
        for session in self.sessions.values():
            _close_quietly(session)


@pytest.fixture(scope="module")
def module_sessions(service: Service) -> Iterator[_ModuleSessions]:
    sessions = _ModuleSessions(service)
    yield sessions
    sessions.close()


@pytest.fixture()
def page(module_sessions: _ModuleSessions, client: str) -> Session:
    """The module's open session for ``client`` (timeout 20s, max_retries 0)."""
    return module_sessions.get(client)


# ------------------------------------------------------------------------------- processes


def browser_processes(root_pid: int) -> list[psutil.Process]:
    """Browser and driver processes below ``root_pid`` (the service's gunicorn master)."""
    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if any(name in child.name().lower() for name in BROWSER_PROCESS_NAMES):
                found.append(child)
    return found


def browser_pids() -> set[int]:
    """Every browser and driver process on the machine (they may be re-parented to init)."""
    pids = set()
    for proc in psutil.process_iter(["name"]):
        name = (proc.info.get("name") or "").lower()
        if any(browser in name for browser in BROWSER_PROCESS_NAMES):
            pids.add(proc.pid)
    return pids


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    running = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.add(pid)
    return running
