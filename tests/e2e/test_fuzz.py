"""Fuzzing the live service (the real gunicorn service over a real WebSocket) with frames made
from our own schemas and mutated; see tests/support/fuzz.py. A bounded count here; the big run
is ``bench/fuzz.py --frames 100000``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import service_env
from tests.support.fuzz import Frame, Fuzzer, frames
from tests.support.service import Service
from tests.support.site import Site

MAX_FRAME_BYTES = 65536
# batches (of 1-20 frames) per client kind: about 10-15 s for each of standard, chrome and firefox
BATCHES = {"standard": 200, "chrome": 25, "firefox": 15}


@pytest.fixture(scope="module")
def fuzz_service(grid, logs: Path) -> Iterator[Service]:
    """A service of its own, so that its log holds only what the fuzzer caused."""
    env = service_env(grid, INNDX_MAX_FRAME_BYTES=str(MAX_FRAME_BYTES))
    with Service(env=env, log_dir=logs) as running:
        yield running


def test_fuzzed_frames_get_valid_non_fatal_replies_in_order(fuzz_service: Service, site: Site, client: str):
    fuzzer = Fuzzer(fuzz_service.ws_url, client)
    batches = st.lists(frames(site.url("/"), MAX_FRAME_BYTES), min_size=1, max_size=20)

    @settings(max_examples=int(os.environ.get("INNDX_FUZZ_BATCHES", BATCHES[client])), deadline=None,
              database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(batches)
    def run(batch: list[Frame]) -> None:
        fuzzer.batch(batch)
        assert fuzz_service.healthz()["ok"]

    try:
        run()
    finally:
        fuzzer.close()
    assert fuzzer.violations == [], "\n".join(fuzzer.violations[:20])
    assert fuzzer.sessions_opened == 1, "a client mistake ended the session"
    log = fuzz_service.log_text()
    assert "Traceback" not in log, fuzz_service.log_tail(80)
