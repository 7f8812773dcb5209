"""The settle window's facts as the page's world sends them (``navigation_record.page_facts``):
whatever BiDi remote value arrives (a hostile page's, a browser's odd number encodings), the
result is a delay and a script count, never an exception; unreadable means "it may redirect"."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from service.clients.navigation_record import page_facts
from service.clients.navigation_settle import settle_window


def remote(meta, scripts) -> dict:
    return {"type": "object", "value": [["meta", meta], ["scripts", scripts]]}


def test_plain_facts():
    assert page_facts(remote({"type": "number", "value": -1}, {"type": "number", "value": 0})) == (-1.0, 0)
    assert page_facts(remote({"type": "number", "value": 2.5}, {"type": "number", "value": 3})) == (2.5, 3)


def test_bidi_special_numbers_are_read():
    for text, expected in (("-0", 0.0), ("Infinity", math.inf), ("-Infinity", -math.inf)):
        assert page_facts(remote({"type": "number", "value": text}, {"type": "number", "value": 0}))[0] == expected
    assert math.isnan(page_facts(remote({"type": "number", "value": "NaN"}, {"type": "number", "value": 0}))[0])


def test_unreadable_facts_mean_it_may_redirect():
    assert page_facts(None) == (-1.0, 1)
    assert page_facts({"type": "string", "value": "no"}) == (-1.0, 1)
    meta, scripts = page_facts(remote({"type": "string", "value": "soon"}, {"type": "string", "value": "x"}))
    assert meta == 0.0 and scripts == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_value_gives_facts_never_an_error(value):
    meta, scripts = page_facts(value if isinstance(value, dict) else {"type": "object", "value": value})
    assert isinstance(meta, float) and isinstance(scripts, int)


class FakeEvents:
    """Just enough of NavigationEvents for the window: the facts are already on the track."""

    kind = "firefox"

    def pump_quietly(self, done, window):
        assert done()


class Track:
    def __init__(self, facts):
        self.facts = facts


class Settings:
    client_redirect_settle = 0.4


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True), st.integers(min_value=0, max_value=10))
def test_the_window_is_never_negative_nor_past_the_refresh(meta, scripts):
    from service.deadline import Deadline

    window = settle_window(FakeEvents(), Track((meta, scripts)), Settings(), Deadline(30))  # type: ignore[arg-type]
    assert window in (0.0, 0.4) or (0 <= meta <= 0.4 and window == meta + 0.4)
    if scripts:
        assert window >= 0.4
