"""The one list of actions: the schema files say which actions exist and what their replies are
called (``action_frames.action_table``); every one of them has its call (``actions.CALLS``),
and nothing else has one."""

from __future__ import annotations

import json

from service import actions
from service.action_frames import ACTIONS, REPLY_ACTION, action_table


def test_every_action_of_the_schemas_has_its_call_and_no_other_has_one():
    assert set(actions.CALLS) | {"goto"} == set(ACTIONS)


def test_the_table_is_read_from_the_schema_files(tmp_path):
    for name, reply in (("poke", "poked"), ("goto", "goto")):
        (tmp_path / f"{name}.request.json").write_text(json.dumps({"properties": {"action": {"const": name}}}))
        (tmp_path / f"{name}.response.json").write_text(json.dumps({"properties": {"action": {"const": reply}}}))
    (tmp_path / "open.request.json").write_text(json.dumps({"properties": {"client": {}}}))
    assert action_table(tmp_path) == {"goto": "goto", "poke": "poked"}


def test_the_seed_actions_and_their_replies_are_there():
    seed = {"goto": "goto", "click": "clicked", "fill": "filled", "content": "content",
            "evaluate": "evaluated", "screenshot": "screenshot", "close": "closed"}
    assert seed.items() <= REPLY_ACTION.items()
