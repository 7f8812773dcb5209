"""The block rules as Chrome's declarativeNetRequest ruleset (service/clients/chrome_blocking.py):
the translation of our globs and resource types, and the extension's files. The browser side is
proven end to end in tests/e2e/test_middleware.py."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.clients import chrome_blocking
from service.errors import BadRequest
from service.middleware import RESOURCE_TYPES, Block, build

# urlFilter, as Chrome reads ours: |...| anchors both ends, * is any run, the rest is literal
ascii_pattern = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="|^"), min_size=1, max_size=40
)


def url_filter_matches(url_filter: str, url: str) -> bool:
    assert url_filter.startswith("|") and url_filter.endswith("|")
    body = url_filter[1:-1]
    return re.fullmatch(".*".join(re.escape(p) for p in body.split("*")), url, re.DOTALL) is not None


@given(ascii_pattern, st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60))
def test_a_url_filter_matches_what_our_glob_matches(pattern, url):
    condition = chrome_blocking.url_condition(pattern)
    assert condition is not None and condition["isUrlFilterCaseSensitive"] is True
    assert url_filter_matches(condition["urlFilter"], url) == Block.build([pattern], []).url_matches(url)


@given(st.text(min_size=1, max_size=20).filter(lambda s: not s.isascii() and not set(s) & set("|^")))
def test_a_non_ascii_pattern_matches_no_url_and_is_left_out(pattern):
    assert chrome_blocking.url_condition(pattern) is None


@pytest.mark.parametrize("pattern", ["*|*", "a^b", "|http://x/*"])
def test_patterns_chrome_cannot_say_are_refused(pattern):
    with pytest.raises(ValueError):
        chrome_blocking.url_condition(pattern)
    with pytest.raises(BadRequest) as caught:
        build([{"type": "block", "url_patterns": ["*/ok/*", pattern]}], "chrome")
    assert caught.value.fatal and "$.middleware[0].url_patterns[1]" in caught.value.message
    assert build([{"type": "block", "url_patterns": [pattern]}], "firefox").blocks  # Firefox says it


def test_every_resource_type_has_its_chrome_types():
    assert set(chrome_blocking.DNR_TYPES) == set(RESOURCE_TYPES)
    mapped = [t for types in chrome_blocking.DNR_TYPES.values() for t in types]
    assert len(mapped) == len(set(mapped)) and "main_frame" not in mapped  # the page itself: never


def test_rules_one_per_pattern_with_the_block_types():
    rules = chrome_blocking.dnr_rules(
        [
            Block.build(["*/ads/*", "*.mp4*"], ["image", "fetch"]),
            Block.build([], ["font"]),
            Block.build(["*/x/*"], []),
            Block.build(["é*"], []),  # matches nothing: no rule, and never "every URL"
        ]
    )
    assert [r["id"] for r in rules] == [1, 2, 3, 4]
    assert all(r["action"] == {"type": "block"} and r["priority"] == 1 for r in rules)
    assert [r["condition"] for r in rules] == [
        {"urlFilter": "|*/ads/*|", "isUrlFilterCaseSensitive": True, "resourceTypes": ["image", "ping", "xmlhttprequest"]},
        {"urlFilter": "|*.mp4*|", "isUrlFilterCaseSensitive": True, "resourceTypes": ["image", "ping", "xmlhttprequest"]},
        {"resourceTypes": ["font"]},
        {"urlFilter": "|*/x/*|", "isUrlFilterCaseSensitive": True},
    ]


def test_the_extension_is_a_zip_of_a_manifest_v3_and_its_rules():
    blocks = [Block.build(["*/asset/*"], ["image"])]
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(chrome_blocking.extension(blocks), validate=True)))
    assert sorted(archive.namelist()) == ["manifest.json", "rules.json"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["manifest_version"] == 3 and manifest["permissions"] == ["declarativeNetRequest"]
    assert manifest["declarative_net_request"]["rule_resources"][0]["path"] == "rules.json"
    assert json.loads(archive.read("rules.json")) == chrome_blocking.dnr_rules(blocks)
