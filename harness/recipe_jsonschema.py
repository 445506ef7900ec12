"""The recipe format as a JSON Schema (draft 2020-12), generated from recipe_schema's tables so it cannot drift.

Each rule of recipe_rules maps to a schema fragment once (a rule with no mapping is an error, so a new rule cannot
be left out silently). The schema describes a recipe *file*: a recipe with `extends` may leave out what its parent
gives. It covers types, names, choices and ranges; recipe_schema.validate() stays the authority (it also checks
package names, kernel command line tokens, guest paths and control characters, which a schema cannot say).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import __version__
from harness import recipe_rules as rules
from harness.recipe_schema import (
    KEYLESS_STYLES,
    REPO_URL_KEYS,
    REQUIRED,
    SCHEMA,
    SETTING_SCHEMA,
    SETTING_STYLES,
    Schema,
    TableList,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:azure-image-harness:recipe"
# recipe_schema: a [[settings]] entry needs these, and a 'file', 'line' or 'comment' style takes no key (the others
# need one).
SETTING_REQUIRED = ("file", "value", "reason")

_STRING_LIST = {"type": "array", "items": {"type": "string"}}
_PLAIN: dict[Callable[[Any], str | None], dict[str, Any]] = {
    rules.string: {"type": "string"},
    rules.nonempty_string: {"type": "string", "pattern": r"\S"},
    rules.boolean: {"type": "boolean"},
    rules.string_list: _STRING_LIST,
    rules.nonempty_string_list: {**_STRING_LIST, "minItems": 1},
    rules.relative_paths: {"type": "array", "items": {"type": "string", "pattern": r"^(?!/)(?!.*(^|/)\.\.(/|$))."}},
    rules.sha256: {"type": "string", "pattern": "^[0-9a-f]{64}$"},
}


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _closure(rule: Callable[..., Any]) -> dict[str, Any]:
    """The values a rule factory (int_range, one_of, ...) closed over, by name."""
    cells = rule.__closure__ or ()
    return dict(zip(rule.__code__.co_freevars, (c.cell_contents for c in cells), strict=True))


_FACTORIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    rules.int_range.__name__: lambda c: {"type": "integer", "minimum": c["low"], "maximum": c["high"]},
    rules.one_of.__name__: lambda c: {"enum": list(c["choices"])},
    rules.list_of.__name__: lambda c: {"type": "array", "minItems": 1, "items": {"enum": list(c["choices"])}},
    rules.matching.__name__: lambda c: {"type": "string", "pattern": _anchored(c["pattern"].pattern),
                                        "description": c["rule"]},
}


def rule_schema(rule: Any) -> dict[str, Any]:
    """The JSON Schema of one entry of a recipe_schema table: a rule, a nested table or a TableList."""
    if isinstance(rule, dict):
        return table_schema(rule)
    if isinstance(rule, TableList):
        return {"type": "array", "items": table_schema(rule.schema)}
    if rule in _PLAIN:
        return dict(_PLAIN[rule])
    factory, _, local = getattr(rule, "__qualname__", "").partition(".<locals>.")
    if local and getattr(rule, "__module__", "") == rules.__name__ and factory in _FACTORIES:
        return _FACTORIES[factory](_closure(rule))
    raise TypeError(f"recipe rule {rule!r} has no JSON Schema mapping: add it to harness/recipe_jsonschema.py")


def table_schema(table: Schema) -> dict[str, Any]:
    """A TOML table: its known keys, nothing else (unknown keys are errors)."""
    return {"type": "object", "properties": {key: rule_schema(rule) for key, rule in table.items()},
            "additionalProperties": False}


def _setting_schema() -> dict[str, Any]:
    keyed = [s for s in SETTING_STYLES if s not in KEYLESS_STYLES]
    return {**table_schema(SETTING_SCHEMA), "required": list(SETTING_REQUIRED), "allOf": [
        {"if": {"required": ["style"], "properties": {"style": {"enum": list(KEYLESS_STYLES)}}},
         "then": {"properties": {"key": {"maxLength": 0}}}},
        {"if": {"required": ["style"], "properties": {"style": {"enum": keyed}}},
         "then": {"required": ["key"], "properties": {"key": {"minLength": 1}}}},
    ]}


def _exactly_one(keys: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {"oneOf": [{"required": [k]} for k in keys]}


def _complete_recipe() -> dict[str, Any]:
    """What a recipe without `extends` must hold itself (one with `extends` gets the rest from its parent)."""
    return {"required": [*REQUIRED, "source", "gallery"], "properties": {
        "source": {**_exactly_one(["bootstrap", "base_image"]),
                   "properties": {"base_image": _exactly_one(["sha256", "checksum_url"])}},
        "gallery": {"required": ["publisher", "offer", "sku"]},
    }}


def json_schema() -> dict[str, Any]:
    """The recipe file format (TOML, read as JSON) as a JSON Schema document."""
    top = table_schema(SCHEMA)
    top["properties"]["settings"] = {"type": "array", "items": _setting_schema(),
                                     "description": "every guest setting that differs from the distro's default, "
                                                    "with the reason it exists"}
    source = top["properties"]["source"]
    source["not"] = {"required": ["bootstrap", "base_image"]}
    source["properties"]["base_image"]["not"] = {"required": ["sha256", "checksum_url"]}
    repository = source["properties"]["repositories"]["items"]
    repository.update({"required": ["id"], **_exactly_one(list(REPO_URL_KEYS))})
    return {"$schema": DRAFT, "$id": SCHEMA_ID, "title": "harness recipe",
            "description": f"A recipe of azure-image-harness {__version__} (a TOML file, <name>.toml). "
                           "`harness recipes validate` checks more than this schema can say.",
            **top, "required": ["name"],
            "if": {"not": {"required": ["extends"]}}, "then": _complete_recipe()}
