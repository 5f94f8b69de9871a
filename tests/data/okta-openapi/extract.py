"""Regenerate the JSON schemas in this directory from Okta's OpenAPI spec (maintainers only).

    python tests/data/okta-openapi/extract.py path/to/okta-management-openapi.yaml

Each ``<Name>.json`` is a JSON Schema (draft 2020-12) for one component schema, with every
component it references under ``$defs``. OpenAPI 3.0 specifics are converted: ``nullable`` becomes
a ``null`` type alternative; ``readOnly``/``writeOnly``, ``x-*``, ``example``, ``description`` and
``discriminator`` are dropped. ``PATCHES`` lists where real Okta responses (see
``tests/data/okta-recordings``) contradict the spec; the tests check the recordings validate.
The tests never need the YAML.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOTS = ("User", "Group", "AppUser", "ApplicationGroupAssignment", "UserSchema", "Error")
DROP = {"readOnly", "writeOnly", "example", "examples", "description", "discriminator", "title"}
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
# (component, property): the property is nullable in real responses though the spec says not.
PATCHES = {
    ("AppUser", "externalId"): "null for apps without provisioning (recorded)",
    ("OktaUserGroupProfile", "description"): "null when a group has no description (recorded)",
}
REF = "#/components/schemas/"


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF):
                found.add(value[len(REF) :])
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema and "$ref" not in schema and not any(k in schema for k in SCHEMA_LISTS):
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        out = {**schema, "type": [*types, "null"]}
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [schema, {"type": "null"}]}


def convert(node: Any) -> Any:
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROP or key.startswith("x-") or key == "nullable":
            continue
        if key == "$ref":
            out[key] = "#/$defs/" + value[len(REF) :]
        elif key == "properties":
            out[key] = {name: convert(schema) for name, schema in value.items()}
        elif key in ("items", "additionalProperties", "not") or key in SCHEMA_LISTS:
            out[key] = convert(value)
        else:
            out[key] = value
    if node.get("nullable") is True:
        out = nullable(out)
    return out


def extract(spec: dict[str, Any], root: str) -> dict[str, Any]:
    components = spec["components"]["schemas"]
    names, todo = set(), [root]
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo.extend(refs(components[name]))
    defs = {name: convert(components[name]) for name in sorted(names)}
    for (component, prop), _why in PATCHES.items():
        if component in defs:
            props = defs[component]["properties"]
            props[prop] = nullable(props[prop])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"Okta OpenAPI {spec['info']['version']}, components.schemas.{root}",
        "$ref": f"#/$defs/{root}",
        "$defs": defs,
    }


def main() -> None:
    spec = yaml.safe_load(Path(sys.argv[1]).read_text())
    here = Path(__file__).parent
    for root in ROOTS:
        text = json.dumps(extract(spec, root), indent=1, sort_keys=True)
        (here / f"{root}.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
