"""Resolve a Graph v1.0 URL path against the CSDL extract, as Graph's OData layer does.

Segments: an entity set or singleton, then key segments, navigation and
structural properties, type casts (`microsoft.graph.group`), bound actions and
functions, `$count` and `$ref`. The result says what the path addresses, which
HTTP methods fit it, and its canonical form in Microsoft's permission map
(lower case, every key as `{id}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .schema import NavProperty, Operation, Schema, StructuredType, TypeRef

_FUNCTION_CALL = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\((?P<args>.*)\)$")


class ContractError(Exception):
    """A request outside Microsoft's published description (or outside the extract)."""


class SegmentNotFound(ContractError):
    def __init__(self, segment: str) -> None:
        super().__init__(f"Resource not found for the segment '{segment}'.")
        self.segment = segment


class MethodNotAllowed(ContractError):
    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"{method} is not allowed on {path}")


class NotModelled(ContractError):
    """Graph describes this path, but the vendored extract does not reach that far."""

    def __init__(self, path: str) -> None:
        super().__init__(f"The simulator's contract extract does not describe '{path}'.")
        self.path = path


@dataclass
class Resolved:
    kind: str  # collection | entity | property | count | ref | action | function
    type: StructuredType | None  # element type for collection/entity/ref/count
    permission_path: str
    property_type: TypeRef | None = None
    operation: Operation | None = None
    nav: NavProperty | None = None  # the navigation property the target was reached through
    keyed: bool = False  # the entity was addressed by a key segment
    singleton: bool = False
    entity_set: bool = False  # a top-level entity set (POST creates there)
    cast: bool = False
    ref_target: str = ""  # for $ref: "collection" | "entity"
    keys: list[str] = field(default_factory=list)

    def methods(self) -> set[str]:
        kind = self.kind
        if kind == "collection":
            # POST creates in an entity set or a contained collection; a plain reference collection
            # (members, memberOf) is changed through $ref only.
            can_create = self.entity_set or (self.nav is not None and self.nav.contains_target)
            return {"GET", "POST"} if can_create else {"GET"}
        if kind == "entity":
            if self.singleton:
                return {"GET", "PATCH"}
            if self.nav is not None and not self.nav.contains_target:
                return {"GET", "DELETE"} if self.keyed else {"GET"}
            return {"GET", "PATCH", "DELETE"}
        if kind == "ref":
            if self.ref_target == "collection":
                return {"GET", "POST"}
            return {"DELETE"} if self.keyed else {"GET", "PUT", "DELETE"}
        if kind == "action":
            return {"POST"}
        return {"GET"}  # property, count, function


def split_segments(path: str) -> list[str]:
    return [s for s in path.strip("/").split("/") if s]


def resolve(schema: Schema, segments: list[str]) -> Resolved:
    """Resolve decoded path segments; raise a ContractError subclass if Graph would not."""
    if not segments:
        raise SegmentNotFound("")
    head = segments[0]
    entry = schema.container.get(head.lower())
    if entry is None:
        raise SegmentNotFound(head)
    name, ref = entry
    keys: list[str] = []
    canonical = [name.lower()]
    current = _structured(schema, ref.name, "/" + name)
    state = Resolved(
        kind="collection" if ref.collection else "entity",
        type=current,
        permission_path="",
        singleton=not ref.collection,
        entity_set=ref.collection,
    )
    for segment in segments[1:]:
        state, piece = _step(schema, state, segment, canonical, keys)
        canonical.append(piece)
    state.permission_path = "/" + "/".join(canonical)
    state.keys = keys
    return state


def _structured(schema: Schema, type_name: str, path: str) -> StructuredType:
    found = schema.type(type_name)
    if found is None:
        raise NotModelled(path)
    return found


def _step(schema: Schema, state: Resolved, segment: str, canonical: list[str], keys: list[str]) -> tuple[Resolved, str]:
    path_so_far = "/" + "/".join([*canonical, segment])
    kind = state.kind
    if kind in ("count", "ref", "action", "function") or (kind == "property" and state.type is None):
        raise SegmentNotFound(segment)
    lowered = segment.lower()
    current = state.type
    assert current is not None

    if lowered == "$count":
        if kind != "collection":
            raise SegmentNotFound(segment)
        return Resolved("count", current, "", nav=state.nav), "$count"

    if lowered == "$ref":
        via = state.nav
        if via is None or via.contains_target:
            raise SegmentNotFound(segment)
        if kind == "collection":
            return Resolved("ref", current, "", nav=via, ref_target="collection"), "$ref"
        if kind == "entity":
            return Resolved("ref", current, "", nav=via, keyed=state.keyed, ref_target="entity"), "$ref"
        raise SegmentNotFound(segment)

    cast = schema.type_by_cast(segment) if "." in segment else None
    if cast is not None and kind in ("collection", "entity"):
        if not schema.is_subtype(cast.name, current.name):
            raise SegmentNotFound(segment)
        narrowed = Resolved(
            kind,
            cast,
            "",
            nav=state.nav,
            keyed=state.keyed,
            singleton=state.singleton,
            entity_set=state.entity_set,
            cast=True,
        )
        return narrowed, cast.name.lower()

    call = _FUNCTION_CALL.match(segment)
    op_name = call.group("name") if call else segment

    if kind == "collection":
        operation = schema.operation(current.name, True, op_name)
        if operation is not None:
            return _operation_state(operation, call is not None)
        if call is not None:
            raise SegmentNotFound(segment)
        keys.append(segment)
        return (
            Resolved("entity", current, "", nav=state.nav, keyed=True),
            "{id}",
        )

    # A single entity or a complex value.
    nav = schema.navigation(current.name, segment) if current.kind == "entity" else None
    if nav is not None:
        target = _structured(schema, nav.type.name, path_so_far)
        return Resolved("collection" if nav.type.collection else "entity", target, "", nav=nav), nav.name.lower()
    prop = schema.property(current.name, segment)
    if prop is not None:
        name, ref = prop
        complex_type = schema.type(ref.name) if not ref.is_primitive and ref.name not in schema.enums else None
        if complex_type is None and not ref.is_primitive and ref.name not in schema.enums:
            raise NotModelled(path_so_far)
        return Resolved("property", complex_type if not ref.collection else None, "", property_type=ref), name.lower()
    if current.kind == "entity":
        operation = schema.operation(current.name, False, op_name)
        if operation is not None:
            return _operation_state(operation, call is not None)
    raise SegmentNotFound(segment)


def _operation_state(operation: Operation, called: bool) -> tuple[Resolved, str]:
    if operation.kind == "action" and called:
        raise SegmentNotFound(f"{operation.name}()")
    piece = operation.name.lower()
    if operation.kind == "function" and operation.params:
        piece += "(" + ",".join(f"{p.lower()}={{id}}" for p in operation.params) + ")"
    return Resolved(operation.kind, None, "", operation=operation), piece
