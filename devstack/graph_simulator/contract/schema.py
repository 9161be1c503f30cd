"""The vendored extract of Microsoft Graph's v1.0 CSDL, as Python objects.

The extract (csdl.json) is produced by `generate.py` from msgraph-metadata's
clean_v10_metadata/cleanMetadata.xml. Names are fully qualified
("microsoft.graph.user"); lookups of properties, navigation properties and
operations are case-insensitive, as Graph's directory endpoints are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CSDL_FILE = HERE / "csdl.json"
NAMESPACE = "microsoft.graph"


@dataclass(frozen=True)
class TypeRef:
    """A property/parameter type: "Edm.String", "microsoft.graph.user", optionally a collection."""

    name: str
    collection: bool = False

    @classmethod
    def parse(cls, text: str) -> TypeRef:
        if text.startswith("Collection(") and text.endswith(")"):
            return cls(text[len("Collection(") : -1], True)
        return cls(text, False)

    def __str__(self) -> str:
        return f"Collection({self.name})" if self.collection else self.name

    @property
    def is_primitive(self) -> bool:
        return self.name.startswith("Edm.")


@dataclass(frozen=True)
class NavProperty:
    name: str
    type: TypeRef
    contains_target: bool


@dataclass
class StructuredType:
    """An entity or complex type with only what validation needs."""

    name: str
    kind: str  # "entity" | "complex"
    base: str | None
    abstract: bool
    open: bool
    key: tuple[str, ...]
    props: dict[str, TypeRef]
    nav: dict[str, NavProperty]

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Operation:
    kind: str  # "action" | "function"
    name: str
    binding: TypeRef
    params: dict[str, TypeRef]
    returns: TypeRef | None


@dataclass
class Schema:
    source: dict[str, str]
    container: dict[str, tuple[str, TypeRef]]  # lower name -> (name, type; collection for entity sets)
    types: dict[str, StructuredType]
    enums: dict[str, tuple[str, ...]]
    operations: list[Operation]
    _derived: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = CSDL_FILE) -> Schema:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schema:
        container = {name.lower(): (name, TypeRef.parse(t)) for name, t in data["container"].items()}
        types: dict[str, StructuredType] = {}
        for kind, section in (("entity", "entityTypes"), ("complex", "complexTypes")):
            for name, spec in data[section].items():
                types[name] = StructuredType(
                    name=name,
                    kind=kind,
                    base=spec.get("base"),
                    abstract=bool(spec.get("abstract")),
                    open=bool(spec.get("open")),
                    key=tuple(spec.get("key", ())),
                    props={p: TypeRef.parse(t) for p, t in spec.get("props", {}).items()},
                    nav={
                        n: NavProperty(n, TypeRef.parse(t.lstrip("+")), t.startswith("+"))
                        for n, t in spec.get("nav", {}).items()
                    },
                )
        operations = [
            Operation(
                kind=op["kind"],
                name=op["name"],
                binding=TypeRef.parse(op["binding"]),
                params={p: TypeRef.parse(t) for p, t in op.get("params", {}).items()},
                returns=TypeRef.parse(op["returns"]) if op.get("returns") else None,
            )
            for op in data["operations"]
        ]
        enums = {name: tuple(members) for name, members in data.get("enumTypes", {}).items()}
        schema = cls(dict(data["source"]), container, types, enums, operations)
        for t in types.values():
            if t.base:
                schema._derived.setdefault(t.base, []).append(t.name)
        return schema

    # -- type hierarchy ------------------------------------------------------

    def type(self, name: str) -> StructuredType | None:
        return self.types.get(name)

    def ancestry(self, name: str) -> Iterator[StructuredType]:
        """The type itself, then its base types (those in the extract)."""
        current = self.types.get(name)
        while current is not None:
            yield current
            current = self.types.get(current.base) if current.base else None

    def is_subtype(self, name: str, of: str) -> bool:
        return any(t.name == of for t in self.ancestry(name))

    def derived(self, name: str) -> list[str]:
        """All types deriving from `name`, transitively."""
        out: list[str] = []
        stack = list(self._derived.get(name, ()))
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(self._derived.get(current, ()))
        return out

    @cached_property
    def _by_lower_name(self) -> dict[str, str]:
        return {name.lower(): name for name in self.types}

    def type_by_cast(self, segment: str) -> StructuredType | None:
        """'microsoft.graph.group' (any case) -> the type; None if it isn't one."""
        name = self._by_lower_name.get(segment.lower())
        return self.types.get(name) if name else None

    # -- members ---------------------------------------------------------------

    def property(self, type_name: str, name: str) -> tuple[str, TypeRef] | None:
        wanted = name.lower()
        for t in self.ancestry(type_name):
            for prop, ref in t.props.items():
                if prop.lower() == wanted:
                    return prop, ref
        return None

    def navigation(self, type_name: str, name: str) -> NavProperty | None:
        wanted = name.lower()
        for t in self.ancestry(type_name):
            for nav in t.nav.values():
                if nav.name.lower() == wanted:
                    return nav
        return None

    def member_names(self, type_name: str) -> dict[str, str]:
        """lower name -> declared name, for structural and navigation properties."""
        names: dict[str, str] = {}
        for t in self.ancestry(type_name):
            for prop in t.props:
                names.setdefault(prop.lower(), prop)
            for nav in t.nav:
                names.setdefault(nav.lower(), nav)
        return names

    def is_open(self, type_name: str) -> bool:
        return any(t.open for t in self.ancestry(type_name))

    def operation(self, type_name: str, collection: bool, name: str) -> Operation | None:
        """A bound action/function callable on `type_name` (or a collection of it), incl. inherited bindings."""
        wanted = name.lower()
        lineage = {t.name for t in self.ancestry(type_name)}
        for op in self.operations:
            if op.name.lower() == wanted and op.binding.collection == collection and op.binding.name in lineage:
                return op
        return None
