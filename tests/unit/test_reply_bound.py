"""The reply bound's arithmetic: the markers the page scripts answer, the exact UTF-8 check, the
in-browser weight (run in node, the same JavaScript the browsers run), the PNG worst case."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import reply_bound
from service.clients.page_scripts import _VALIDATE, _WEIGH
from service.config import Settings, SettingsError
from service.errors import ScriptError, TooLarge
from service.model import RawJson
from service.replies import MAX_MESSAGE, encode, error_frame

MIB = 1024 * 1024


def test_the_setting_defaults_to_32_mib_and_reads_the_environment():
    assert Settings().max_reply_bytes == 32 * MIB
    assert Settings.from_env({"INNDX_MAX_REPLY_BYTES": "1048576"}).max_reply_bytes == MIB
    with pytest.raises(SettingsError):
        Settings.from_env({"INNDX_MAX_REPLY_BYTES": "0"})
    with pytest.raises(SettingsError):
        Settings.from_env({"INNDX_MAX_REPLY_BYTES": "32MiB"})


def test_unwrap_reads_every_marker():
    assert reply_bound.unwrap('J{"a":1}', "evaluate result", 7, "J") == '{"a":1}'
    with pytest.raises(TooLarge, match=r"is 8 bytes, over the 7-byte reply limit \(INNDX_MAX_REPLY_BYTES\)"):
        reply_bound.unwrap('J{"a":10}', "evaluate result", 7, "J")
    with pytest.raises(TooLarge, match="the content is at least 50 bytes, over the 10-byte"):
        reply_bound.unwrap("L50", "content", 10, "T")
    with pytest.raises(TooLarge, match="at least 11 bytes"):  # a marker under the bound still says over
        reply_bound.unwrap("L3", "content", 10, "T")
    with pytest.raises(ScriptError, match="not JSON: cycle"):
        reply_bound.unwrap("Ncycle", "evaluate result", 10, "J")
    with pytest.raises(ScriptError, match="script threw: Error: x"):
        reply_bound.unwrap("EError: x", "evaluate result", 10, "J")
    for answer in (None, "", "T<p>", "L", "L12x", "L" + "9" * 30, 5, ["J1"]):
        with pytest.raises(ValueError):
            reply_bound.unwrap(answer, "evaluate result", 10, "J")
    with pytest.raises(ValueError):
        reply_bound.unwrap("Nx", "content", 10, "T")  # content has no script error


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=64))
def test_unwrap_answers_exactly_what_fits(text, bound):
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= bound:
        assert reply_bound.unwrap("J" + text, "evaluate result", bound, "J") == text
    else:
        with pytest.raises(TooLarge, match=f"is {size} bytes"):
            reply_bound.unwrap("J" + text, "evaluate result", bound, "J")


# ---------------------------------------------------------------------------- the weight, in node

_NODE_LOOP = (
    "const rl = require('readline').createInterface({input: process.stdin});"
    "rl.on('line', line => { const [text, bound] = JSON.parse(line);"
    + _WEIGH
    + "{"
    + _VALIDATE
    + "console.log(JSON.stringify([weight, why])); } });"
)


@pytest.fixture(scope="module")
def node() -> Iterator:
    """``node(text, bound)`` -> (weight, why): the page scripts' weight and validation, in node."""
    found = shutil.which("node")
    assert found, "node runs the page scripts' checks in the unit tests"
    proc = subprocess.Popen([found, "-e", _NODE_LOOP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(text: str, bound: int = 1 << 40) -> tuple[int, str]:
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps([text, bound]) + "\n")
        proc.stdin.flush()
        weight, why = json.loads(proc.stdout.readline())
        return weight, why

    try:
        yield run
    finally:
        assert proc.stdin and proc.stdout
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def weigh(node) -> Iterator:
    yield lambda text, bound=1 << 40: node(text, bound)[0]


@pytest.fixture(scope="module")
def validate(node) -> Iterator:
    yield lambda text: node(text)[1]


def _plain(text: str) -> bool:
    """No control character but tab, LF, CR; no unpaired surrogate (what JSON.stringify gives)."""
    if any(c < " " and c not in "\t\n\r" for c in text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None)))
def test_the_weight_is_the_utf8_size_of_plain_text_and_bounds_what_crosses(weigh, text):
    weight = weigh(text)
    size = reply_bound.utf8_size(text)
    if _plain(text):
        assert weight == size
    assert weight >= size
    # what crosses BiDi: the string as a JSON string (escaped, quotes left out)
    crossed = len(json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass"))
    assert crossed <= 2 * weight


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1), st.integers(min_value=0, max_value=40))
def test_the_weight_stops_past_the_bound(weigh, text, bound):
    weight = weigh(text, bound)
    full = weigh(text)
    assert (weight > bound) == (full > bound)
    assert weight <= full


def test_the_weight_pairs_surrogates_and_counts_lone_ones_as_escapes(weigh):
    assert weigh("\U0001f600") == 4
    assert weigh("\ud83d") == 6 and weigh("\ude00") == 6 and weigh("\ude00\ud83d") == 12
    assert weigh("\x01") == 6 and weigh("\n\t\r") == 3 and weigh('"\\') == 2


# ---------------------------------------------------------------------------- screenshots


def test_the_png_worst_case_covers_incompressible_rgba():
    for width, height in ((1, 1), (100, 100), (1280, 720), (7680, 4320)):
        raw = height * (1 + 4 * width)
        worst = reply_bound.png_worst_case(width, height)
        assert raw < worst < raw * 1.01 + 70_000
    assert reply_bound.png_worst_case(0, 10) == reply_bound.png_worst_case(10, 0) > 0


@given(st.integers(1, 8000), st.integers(1, 5000), st.integers(0, 50), st.integers(0, 50))
def test_the_png_worst_case_grows_with_the_viewport(width, height, more_w, more_h):
    assert reply_bound.png_worst_case(width, height) <= reply_bound.png_worst_case(width + more_w, height + more_h)


def test_the_default_bound_takes_every_viewport_the_schema_allows():
    """7680x4320 (the open frame's largest) stays within 4x 32 MiB: no screenshot a client can
    ask for is refused before it is taken, unless the operator lowers the bound."""
    reply_bound.screenshot_precheck(7680, 4320, Settings().max_reply_bytes)
    assert reply_bound.png_worst_case(7680, 4320) <= reply_bound.SCREENSHOT_HEADROOM * 32 * MIB


def test_the_screenshot_precheck_refuses_past_the_headroom():
    reply_bound.screenshot_precheck(1280, 720, MIB)  # 3.7 MB worst case: within 4 MiB
    with pytest.raises(TooLarge, match="1920x1080-pixel viewport can be up to 8[0-9]{6} bytes"):
        reply_bound.screenshot_precheck(1920, 1080, MIB)


# ---------------------------------------------------------------------------- JSON text, unbuilt


def _python_says_json(text: str) -> bool:
    def no_constants(name: str) -> None:
        raise ValueError(name)

    try:
        text.encode("utf-8")
        json.loads(text, parse_constant=no_constants)
    except ValueError:
        return False
    return True


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json_values, st.sampled_from([None, 1, 2]), st.booleans())
def test_the_browser_check_takes_every_json_text(validate, value, indent, ascii_only):
    assert validate(json.dumps(value, indent=indent, ensure_ascii=ascii_only)) == ""


_json_chars = st.text(alphabet='{}[]:,"\\ 0123456789.eE+-truefalsnu\n\ud800\u00e9', max_size=12)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_json_chars, st.text(max_size=8), _json_values.map(json.dumps).map(lambda t: t[:-1])))
def test_the_browser_check_agrees_with_python_on_any_text(validate, text):
    """The same texts are JSON for the browser's check and for Python's parser (NaN, Infinity and
    unpaired surrogates refused), so a result passed on unbuilt is always a JSON value."""
    assert (validate(text) == "") == _python_says_json(text), repr(text)


def test_a_raw_json_result_is_spliced_into_its_frame_as_it_is():
    frame = {"action": "evaluated", "result": RawJson(' [1, {"a": "\u00e9"}] '), "id": "x"}
    text = encode(frame)
    assert json.loads(text) == {"action": "evaluated", "result": [1, {"a": "\u00e9"}], "id": "x"}
    assert '[1, {"a": "\u00e9"}]' in text
    assert encode({"result": RawJson("null")}) == '{"result":null}'


def test_an_error_message_is_clipped_whatever_put_it_there():
    """A page can put its own text in a message (a tag name a click's 409 names): 40 MB once."""
    frame = error_frame(ScriptError("x" * 10_000_000), "i")
    assert frame["message"] == "x" * MAX_MESSAGE + "... (10000000 characters)"
    assert frame["code"] == 422 and frame["id"] == "i"
    assert error_frame(TooLarge("short"))["message"] == "short"
