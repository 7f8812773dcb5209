"""schemas/asyncapi.yaml: valid AsyncAPI 3.0, and a complete map of the frame schemas.

The AsyncAPI specification's own JSON Schema comes from the npm package ``@asyncapi/specs``
(installed by scripts/setup into .tools/asyncapi). The document refers to the frame schemas by
``$ref`` and copies none of them: every schema file in ``schemas/`` is reachable from it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import urldefrag

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
DOCUMENT = SCHEMAS / "asyncapi.yaml"
SPEC = ROOT / ".tools/asyncapi/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    assert SPEC.is_file(), f"{SPEC} missing: run scripts/setup"
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(spec)
    return Draft7Validator(spec)


def _problem(validator: Draft7Validator, document: dict) -> str | None:
    error = best_match(validator.iter_errors(document))
    return None if error is None else f"{error.json_path}: {error.message}"


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _pointer(document: dict, fragment: str):
    node = document
    for part in fragment.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_document_is_valid_asyncapi_3(document, validator):
    assert document["asyncapi"] == "3.0.0"
    assert _problem(validator, document) is None, _problem(validator, document)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["operations"]["goto"].pop("channel"),
        lambda d: d["channels"]["sessions"].update(address=42),
        lambda d: d["components"]["messages"]["goto"].update(payload=[]),
        lambda d: d.update(asyncapi="2.6.0"),
    ],
)
def test_the_validator_sees_a_broken_document(document, validator, breakage):
    broken = copy.deepcopy(document)
    breakage(broken)
    assert _problem(validator, broken) is not None


def test_every_internal_reference_resolves(document):
    internal = [ref for ref in _refs(document) if ref.startswith("#")]
    assert internal
    for ref in internal:
        _pointer(document, ref[1:])  # KeyError names a dangling one


def test_every_message_payload_is_a_reference_to_a_frame_schema(document):
    for name, message in document["components"]["messages"].items():
        payload = message["payload"]
        assert set(payload) == {"schemaFormat", "schema"}, name
        assert payload["schemaFormat"] == "application/schema+json;version=2020-12", name
        assert set(payload["schema"]) == {"$ref"}, f"{name} copies its schema instead of referring to it"
        target = SCHEMAS / payload["schema"]["$ref"]
        assert target.is_file(), f"{name}: {target} missing"
    frames = {p.name for p in SCHEMAS.glob("*.json") if p.name != "definitions.json"}
    direct = {Path(m["payload"]["schema"]["$ref"]).name for m in document["components"]["messages"].values()}
    assert frames == direct, f"frame schemas without a message: {sorted(frames - direct)}"


def test_every_schema_file_is_referenced(document):
    """Every JSON file under schemas/ is reached from the document by following $refs."""
    reached: set[Path] = set()
    todo = [(DOCUMENT, ref) for ref in _refs(document) if not ref.startswith("#")]
    while todo:
        base, ref = todo.pop()
        target = (base.parent / urldefrag(ref).url).resolve()
        assert target.is_file(), f"{base.name} refers to {ref}, which does not exist"
        if target in reached:
            continue
        reached.add(target)
        todo.extend((target, r) for r in _refs(json.loads(target.read_text(encoding="utf-8"))) if not r.startswith("#"))
    files = {path.resolve() for path in SCHEMAS.rglob("*.json")}
    assert files - reached == set(), f"not referenced from asyncapi.yaml: {sorted(str(p) for p in files - reached)}"


def test_the_operations_cover_every_action(document):
    actions = {p.name.split(".")[0] for p in SCHEMAS.glob("*.request.json")}
    assert actions <= set(document["operations"]), sorted(actions - set(document["operations"]))
    for name in actions:
        operation = document["operations"][name]
        assert operation["action"] == "receive"
        replies = [ref["$ref"].rsplit("/", 1)[-1] for ref in operation["reply"]["messages"]]
        assert "error" in replies, name
