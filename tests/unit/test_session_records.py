"""Session records (``service.session_records``): the parser takes hostile input, and the Redis
scripts, against a real redis-server on loopback: ownership, release, adoption (one winner),
expiry of a dead owner's claim, the window."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import session_records
from service.session_records import Record, RecordError, Records, parse
from tests.support.ports import wait_for
from tests.support.redis_server import REDIS_SERVER, RedisServer

OPEN = {"client": "standard", "timeout": "30000ms", "max_redirects": 10, "max_retries": 3, "middleware": [], "proxies": []}


def record(**changes) -> Record:
    fields = dict(tenant="acme", key="", token=b"\x01" * 32, client="standard", open=OPEN, last_received=7)
    fields.update(changes)
    return Record(**fields)


# ------------------------------------------------------------------------------------ the parser


def test_a_record_round_trips_and_carries_no_token():
    made = record(key="ab" * 32, last_received="x")
    text = made.encode()
    assert parse(text) == made and parse(text.encode()) == made
    assert "token" in json.loads(text) and json.loads(text)["token"] == "01" * 32  # the hash, hex


@pytest.mark.parametrize("change", [
    {"v": 2}, {"v": True}, {"tenant": ""}, {"tenant": 5}, {"client": "safari"}, {"key": "AB" * 32},
    {"key": "ab"}, {"token": "zz" * 32}, {"token": None}, {"last_received": 1.5}, {"last_received": True},
    {"last_received": 2**63}, {"last_received": "x" * 129}, {"open": []}, {"open": {"client": "chrome"}},
    {"extra": 1},
])
def test_a_record_with_any_field_off_is_refused(change):
    data = json.loads(record().encode())
    data.update(change)
    with pytest.raises(RecordError):
        parse(json.dumps(data))


@pytest.mark.parametrize("raw", [b"", b"null", b"[]", b"{", b"\xff\xfe", b"NaN", "[" * 100_000, b"x" * (5 * 2**20)])
def test_what_is_not_a_record_is_refused(raw):
    with pytest.raises(RecordError):
        parse(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(session_records._FIELDS) + ["x"]), json_values, max_size=8))
def test_a_hostile_record_is_a_record_error_or_a_well_formed_record(data):
    try:
        got = parse(json.dumps(data))
    except RecordError:
        return
    assert got.client in session_records.KINDS and isinstance(got.open, dict) and len(got.token) == 32
    assert isinstance(got.tenant, str) and got.tenant


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_hostile_bytes_are_a_record_error(raw):
    try:
        parse(raw)
    except RecordError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=50), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=128)))
def test_any_record_we_write_parses_back(tenant, last):
    made = record(tenant=tenant, last_received=last)
    assert parse(made.encode()) == made


# ------------------------------------------------------------------------------------ the scripts

TTL, WINDOW = 3.0, 4.0


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if not Path(REDIS_SERVER).exists():
        pytest.skip("no redis-server (scripts/setup --with-redis)")
    with RedisServer(log_dir=tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def two(redis_url):
    made = [Records(redis_url, TTL, WINDOW, uuid.uuid4().hex) for _ in range(2)]
    yield made
    for records in made:
        records.close()


def test_a_held_record_is_owned_for_others_and_mine_for_its_owner(two):
    a, b = two
    sid = str(uuid.uuid4())
    assert b.look(sid).state == "none"
    assert a.write(sid, record())
    assert a.look(sid).state == "mine" and b.look(sid).state == "owned"
    assert parse(b.look(sid).raw) == record()
    assert not b.write(sid, record(tenant="evil"))  # never over another's
    assert parse(a.look(sid).raw).tenant == "acme"
    a.delete(sid)
    assert b.look(sid).state == "none"


def test_a_released_record_is_adopted_by_exactly_one_of_two_racing(two, redis_url):
    a, b = two
    sid = str(uuid.uuid4())
    a.write(sid, record())
    assert a.release(sid, record(last_received=9))
    look = b.look(sid)
    assert look.state == "free" and parse(look.raw).last_received == 9
    third = Records(redis_url, TTL, WINDOW, uuid.uuid4().hex)
    try:
        won: list[bool] = []
        barrier = threading.Barrier(2)

        def race(records: Records) -> None:
            barrier.wait(5)
            won.append(records.adopt(sid, look.raw))

        threads = [threading.Thread(target=race, args=(r,)) for r in (b, third)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(won) == [False, True]
        winner = b if b.look(sid).state == "mine" else third
        assert winner.look(sid).state == "mine" and a.look(sid).state == "owned"
        assert not a.write(sid, record())  # the old owner cannot take it back
        a.delete(sid)  # nor delete it
        assert winner.look(sid).state == "mine"
    finally:
        third.close()


def test_a_record_changed_since_it_was_read_is_not_adopted(two):
    a, b = two
    sid = str(uuid.uuid4())
    a.write(sid, record())
    a.release(sid, record())
    stale = b.look(sid).raw
    a.write(sid, record(last_received=10))  # a resume there, meanwhile (not yet adopted: owner "")
    assert not b.adopt(sid, stale)


def test_a_dead_owners_record_is_free_after_the_ttl_and_expired_after_the_window(two):
    a, b = two
    sid = str(uuid.uuid4())
    a.write(sid, record())
    a._stop.set()  # a SIGKILL: its heartbeat stops
    a._heartbeat.join(5)
    assert b.look(sid).state == "owned"
    wait_for(lambda: b.look(sid).state == "free", TTL + 3, interval=0.1, what="the owner's claim to lapse")
    wait_for(lambda: b.look(sid).state == "expired", WINDOW + 3, interval=0.1, what="the window to pass")
    assert not b.adopt(sid, b.look(sid).raw)


def test_a_live_owners_heartbeat_keeps_its_records(two):
    a, b = two
    sid = str(uuid.uuid4())
    a.write(sid, record())
    end = time.monotonic() + TTL * 1.5
    while time.monotonic() < end:  # longer than the TTL: renewed meanwhile
        assert b.look(sid).state == "owned"
        time.sleep(0.2)


def test_a_tampered_hash_is_read_as_untrusted_input(two):
    """Fields that are not numbers, a record that is not JSON, a key of another type: never a
    crash in the scripts; the parser refuses the record; a key of another type is a Redis error."""
    a, b = two
    sid = str(uuid.uuid4())
    key = Records.key(sid)
    raw = b._redis  # the test's own view of the server
    raw.hset(key, mapping={"record": "{not json", "owner": "someone", "seen": "soon", "released": "x"})
    look = b.look(sid)
    assert look.state == "expired"  # no number: its owner is not alive, and its window ended long ago
    with pytest.raises(RecordError):
        parse(look.raw)
    raw.delete(key)
    raw.set(key, "a string")
    with pytest.raises(b.error):
        b.look(sid)
    assert not a.write(sid, record())  # the write's script fails: logged, False
    raw.delete(key)
