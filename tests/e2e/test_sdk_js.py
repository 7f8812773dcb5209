"""The TypeScript client (sdk/js, package ``inndx``): its own ``npm test`` against the real service.

For each client kind, ``npm test`` in sdk/js (which builds: types from schemas/, then tsc) runs
Node's test runner on sdk/js/test: ``live.test.ts`` against the service and the test site these
fixtures start on 127.0.0.1 (URLs in ``INNDX_SDK_*``), and ``hostile.test.ts`` against a hostile
WebSocket server of its own (the client's error paths). A failing node test fails this test with
node's output. The node modules come from ``scripts/setup`` (``npm ci`` in sdk/js).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import TIMEOUT_FACTOR, scaled
from tests.support.service import REPO_ROOT, Service
from tests.support.site import Site

SDK = REPO_ROOT / "sdk" / "js"

# the client is the same over a Grid: the grid env's time goes to the browser cases themselves
pytestmark = pytest.mark.local_only


@pytest.fixture(scope="module")
def pinging(grid, logs: Path) -> Iterator[Service]:
    """A service that pings every second and cuts a client that misses one: for the idle case."""
    from tests.e2e.conftest import service_env

    with Service(env=service_env(grid, INNDX_PING_INTERVAL="1s"), log_dir=logs) as running:
        yield running


def _npm() -> str:
    npm = shutil.which("npm")
    assert npm, "npm is not on PATH (scripts/setup installs it)"
    assert (SDK / "node_modules" / "ws").is_dir(), "sdk/js/node_modules is missing: run scripts/setup (npm ci in sdk/js)"
    return npm


@pytest.mark.timeout(scaled(300))
def test_npm_test(client: str, service: Service, site: Site, request: pytest.FixtureRequest):
    """``npm test`` in sdk/js passes against the live service for this client kind."""
    env = {
        **os.environ,
        "INNDX_SDK_SERVICE_URL": service.ws_url,
        "INNDX_SDK_SITE_URL": site.url("/"),
        "INNDX_SDK_CLIENT": client,
        "INNDX_TEST_TIMEOUT_FACTOR": f"{TIMEOUT_FACTOR:g}",
        "NO_COLOR": "1",
        "npm_config_update_notifier": "false",
    }
    if client == "standard":  # the clientless cases (their own standard sessions) run once, here
        env["INNDX_SDK_PINGING_URL"] = request.getfixturevalue("pinging").ws_url
    done = subprocess.run([_npm(), "test", "--silent"], cwd=SDK, env=env, capture_output=True, text=True,
                          timeout=scaled(280), check=False)
    output = done.stdout + done.stderr
    print(output)  # shown with -rP, or on a failure
    assert done.returncode == 0, f"npm test failed ({done.returncode}) for {client}:\n{output[-20000:]}"
    assert "# fail 0" in output and "# pass 0" not in output, output[-5000:]
