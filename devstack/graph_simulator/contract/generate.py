"""Regenerate the vendored contract extracts from Microsoft's published sources.

    python -m devstack.graph_simulator.contract.generate \\
        --metadata /work/.mirror/microsoftgraph+msgraph-metadata/repo \\
        --permissions /work/.mirror/microsoftgraph+microsoft-graph-devx-content/repo

Each source is a git directory (its HEAD is read and its commit recorded) or a
plain file (then give --metadata-commit / --permissions-commit, or the commit is
recorded as "unknown"). Writes csdl.json and permissions.json next to this file.

csdl.json keeps, from clean_v10_metadata/cleanMetadata.xml: the entity
container's sets and singletons; the entity and complex types the simulator's
roots reach (ROOT_PATHS), with base and derived types, keys, structural
properties and navigation properties (type, collection-ness, containment); the
complex types those use; enum member names; and the actions/functions bound to
the kept types. permissions.json keeps, from permissions/new/permissions.json,
the application-permission entries of every path under ROOTS that the CSDL
extract resolves: per method, the least-privileged permission(s) and every
other permission the map says grants the call.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .resolve import ContractError, resolve, split_segments
from .schema import HERE, Schema

METADATA_REPO = "microsoftgraph/msgraph-metadata"
METADATA_PATH = "clean_v10_metadata/cleanMetadata.xml"
PERMISSIONS_REPO = "microsoftgraph/microsoft-graph-devx-content"
PERMISSIONS_PATH = "permissions/new/permissions.json"

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"

# The paths whose every segment type is kept in full. Derived types of each segment type are kept too
# (for casts such as /memberOf/microsoft.graph.group and @odata.type in bodies).
ROOT_PATHS = (
    "/users/{id}/memberOf",
    "/users/{id}/transitiveMemberOf",
    "/users/{id}/authentication/temporaryAccessPassMethods/{id}",
    "/users/{id}/authentication/methods/{id}",
    "/users/{id}/licenseDetails/{id}",
    "/groups/{id}/members",
    "/groups/{id}/owners",
    "/groups/{id}/transitiveMembers",
    "/directoryObjects/{id}",
    "/directoryRoles/{id}/members",
    "/directory/deletedItems/{id}",
    "/roleManagement/directory/roleDefinitions/{id}",
    "/roleManagement/directory/roleAssignments/{id}",
    "/roleManagement/directory/roleAssignmentScheduleRequests/{id}",
    "/roleManagement/directory/roleAssignmentScheduleInstances/{id}",
    "/roleManagement/directory/roleAssignmentSchedules/{id}",
    "/roleManagement/directory/roleEligibilityScheduleRequests/{id}",
    "/roleManagement/directory/roleEligibilityScheduleInstances/{id}",
    "/roleManagement/directory/roleEligibilitySchedules/{id}",
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{id}",
    "/organization/{id}",
    "/domains/{id}",
    "/subscribedSkus/{id}",
    "/servicePrincipals/{id}",
    "/identityGovernance/privilegedAccess/group/assignmentScheduleRequests/{id}",
    "/identityGovernance/privilegedAccess/group/assignmentScheduleInstances/{id}",
    "/identityGovernance/privilegedAccess/group/assignmentSchedules/{id}",
    "/identityGovernance/privilegedAccess/group/eligibilityScheduleRequests/{id}",
    "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances/{id}",
    "/identityGovernance/privilegedAccess/group/eligibilitySchedules/{id}",
)
# Permission-map paths kept: those starting with one of these (lower case) that the CSDL extract resolves.
ROOTS = (
    "/users",
    "/groups",
    "/directoryobjects",
    "/directoryroles",
    "/directory/deleteditems",
    "/rolemanagement/directory",
    "/policies/authenticationmethodspolicy",
    "/organization",
    "/domains",
    "/subscribedskus",
    "/serviceprincipals",
    "/identitygovernance/privilegedaccess/group",
)


# ---------------------------------------------------------------- sources


@dataclass
class Source:
    text: str
    repository: str
    path: str
    commit: str

    def provenance(self) -> dict[str, str]:
        return {"repository": self.repository, "path": self.path, "commit": self.commit}


def read_source(location: str, inner_path: str, repository: str, commit: str | None) -> Source:
    """A git directory (read HEAD:inner_path, record HEAD's commit) or a plain file."""
    path = Path(location)
    if path.is_dir():
        bare = (path / "HEAD").exists() and not (path / ".git").exists()
        git = ["git", "--git-dir", str(path)] if bare else ["git", "-C", str(path)]
        # The arguments are a local directory the developer named and fixed git verbs: no shell, no untrusted input.
        head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()  # noqa: S603
        show = subprocess.run([*git, "show", f"HEAD:{inner_path}"], check=True, capture_output=True)  # noqa: S603
        text = show.stdout.decode("utf-8-sig")
        return Source(text, repository, inner_path, head)
    return Source(path.read_text(encoding="utf-8-sig"), repository, inner_path, commit or "unknown")


# ---------------------------------------------------------------- CSDL


class Csdl:
    """The whole CSDL, indexed by fully qualified name (aliases resolved)."""

    def __init__(self, xml_text: str) -> None:
        root = ET.fromstring(xml_text)  # noqa: S314 - Microsoft's published metadata, not untrusted input
        self.aliases: dict[str, str] = {}
        self.entity: dict[str, ET.Element] = {}
        self.complex: dict[str, ET.Element] = {}
        self.enums: dict[str, ET.Element] = {}
        self.operations: list[tuple[str, ET.Element]] = []
        self.container: dict[str, str] = {}
        schemas = list(root.iter(f"{EDM}Schema"))
        for schema in schemas:
            namespace = schema.attrib["Namespace"]
            if "Alias" in schema.attrib:
                self.aliases[schema.attrib["Alias"]] = namespace
        for schema in schemas:
            namespace = schema.attrib["Namespace"]
            for child in schema:
                tag = child.tag.removeprefix(EDM)
                name = f"{namespace}.{child.attrib.get('Name', '')}"
                if tag == "EntityType":
                    self.entity[name] = child
                elif tag == "ComplexType":
                    self.complex[name] = child
                elif tag == "EnumType":
                    self.enums[name] = child
                elif tag in ("Action", "Function") and child.attrib.get("IsBound") == "true":
                    self.operations.append((tag.lower(), child))
                elif tag == "EntityContainer":
                    for item in child:
                        item_tag = item.tag.removeprefix(EDM)
                        if item_tag == "EntitySet":
                            self.container[item.attrib["Name"]] = f"Collection({self.qualify(item.attrib['EntityType'])})"
                        elif item_tag == "Singleton":
                            self.container[item.attrib["Name"]] = self.qualify(item.attrib["Type"])

    def qualify(self, type_text: str) -> str:
        if type_text.startswith("Collection(") and type_text.endswith(")"):
            return f"Collection({self.qualify(type_text[11:-1])})"
        if type_text.startswith("Edm."):
            return type_text
        prefix, _, short = type_text.rpartition(".")
        return f"{self.aliases.get(prefix, prefix)}.{short}"

    def element(self, name: str) -> ET.Element | None:
        return self.entity.get(name) or self.complex.get(name)

    def base(self, name: str) -> str | None:
        element = self.element(name)
        base = element.attrib.get("BaseType") if element is not None else None
        return self.qualify(base) if base else None

    def navigation(self, type_name: str, nav_name: str) -> str | None:
        current: str | None = type_name
        while current:
            element = self.entity.get(current)
            if element is None:
                return None
            for nav in element.findall(f"{EDM}NavigationProperty"):
                if nav.attrib["Name"].lower() == nav_name.lower():
                    return self.qualify(nav.attrib["Type"])
            current = self.base(current)
        return None


def _element_type(type_text: str) -> str:
    return type_text[11:-1] if type_text.startswith("Collection(") else type_text


def kept_types(csdl: Csdl) -> tuple[set[str], set[str]]:
    """(entity types kept in full, complex types kept) for ROOT_PATHS."""
    derived: dict[str, set[str]] = defaultdict(set)
    for name in [*csdl.entity, *csdl.complex]:
        base = csdl.base(name)
        if base:
            derived[base].add(name)

    def with_derived(names: Iterable[str]) -> set[str]:
        out: set[str] = set()
        stack = list(names)
        while stack:
            current = stack.pop()
            if current not in out:
                out.add(current)
                stack.extend(derived.get(current, ()))
        return out

    segment_types: set[str] = set()
    for path in ROOT_PATHS:
        parts = split_segments(path)
        current = _element_type(csdl.container[parts[0]])
        segment_types.add(current)
        for part in parts[1:]:
            if part == "{id}":
                continue
            target = csdl.navigation(current, part)
            if target is None:
                raise SystemExit(f"ROOT_PATHS: {path}: no navigation '{part}' on {current}")
            current = _element_type(target)
            segment_types.add(current)
    entities = with_derived(segment_types)
    for name in list(entities):  # base chains (for inherited members)
        base = csdl.base(name)
        while base:
            entities.add(base)
            base = csdl.base(base)
    entities &= set(csdl.entity)

    operations = [op for _, op in csdl.operations if _binding(csdl, op) in entities]
    complex_types: set[str] = set()
    pending = [t for e in entities for t in _member_types(csdl, csdl.entity[e])]
    # Operation parameters: their complex types and entity types' structure (for body validation).
    for op in operations:
        for param in op.findall(f"{EDM}Parameter")[1:]:
            pending.append(_element_type(csdl.qualify(param.attrib["Type"])))
    param_entities: set[str] = set()
    while pending:
        name = pending.pop()
        if name in csdl.complex and name not in complex_types:
            complex_types.add(name)
            pending.extend(_member_types(csdl, csdl.complex[name]))
            pending.extend(derived.get(name, ()))
            base = csdl.base(name)
            if base:
                pending.append(base)
        elif name in csdl.entity and name not in entities and name not in param_entities:
            param_entities.add(name)
            pending.extend(_member_types(csdl, csdl.entity[name], navigation=False))
            base = csdl.base(name)
            if base:
                pending.append(base)
    return entities | param_entities, complex_types


def _binding(csdl: Csdl, op: ET.Element) -> str:
    return _element_type(csdl.qualify(op.findall(f"{EDM}Parameter")[0].attrib["Type"]))


def _member_types(csdl: Csdl, element: ET.Element, navigation: bool = False) -> list[str]:
    tags = [f"{EDM}Property", *([f"{EDM}NavigationProperty"] if navigation else [])]
    return [_element_type(csdl.qualify(p.attrib["Type"])) for tag in tags for p in element.findall(tag)]


def build_csdl(source: Source) -> dict[str, Any]:
    csdl = Csdl(source.text)
    entities, complex_types = kept_types(csdl)
    kept = entities | complex_types

    def structured(name: str, element: ET.Element) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if element.attrib.get("BaseType"):
            spec["base"] = csdl.qualify(element.attrib["BaseType"])
        if element.attrib.get("Abstract") == "true":
            spec["abstract"] = True
        if element.attrib.get("OpenType") == "true":
            spec["open"] = True
        key = element.find(f"{EDM}Key")
        if key is not None:
            spec["key"] = [ref.attrib["Name"] for ref in key.findall(f"{EDM}PropertyRef")]
        props = {p.attrib["Name"]: csdl.qualify(p.attrib["Type"]) for p in element.findall(f"{EDM}Property")}
        if props:
            spec["props"] = props
        nav = {
            n.attrib["Name"]: ("+" if n.attrib.get("ContainsTarget") == "true" else "") + csdl.qualify(n.attrib["Type"])
            for n in element.findall(f"{EDM}NavigationProperty")
        }
        if nav:
            spec["nav"] = nav
        return spec

    referenced_enums: set[str] = set()
    for name in kept:
        element = csdl.element(name)
        assert element is not None
        referenced_enums.update(t for t in _member_types(csdl, element) if t in csdl.enums)
    operations = []
    for kind, op in csdl.operations:
        params = op.findall(f"{EDM}Parameter")
        binding = csdl.qualify(params[0].attrib["Type"])
        if _element_type(binding) not in entities:
            continue
        returns = op.find(f"{EDM}ReturnType")
        entry: dict[str, Any] = {"kind": kind, "name": op.attrib["Name"], "binding": binding}
        if params[1:]:
            entry["params"] = {p.attrib["Name"]: csdl.qualify(p.attrib["Type"]) for p in params[1:]}
            referenced_enums.update(_element_type(t) for t in entry["params"].values() if _element_type(t) in csdl.enums)
        if returns is not None:
            entry["returns"] = csdl.qualify(returns.attrib["Type"])
        operations.append(entry)
    operations.sort(key=lambda o: (o["binding"], o["name"], o["kind"]))
    return {
        "source": source.provenance(),
        "container": dict(sorted(csdl.container.items())),
        "entityTypes": {n: structured(n, csdl.entity[n]) for n in sorted(entities)},
        "complexTypes": {n: structured(n, csdl.complex[n]) for n in sorted(complex_types)},
        "enumTypes": {n: [m.attrib["Name"] for m in csdl.enums[n].findall(f"{EDM}Member")] for n in sorted(referenced_enums)},
        "operations": operations,
    }


# ---------------------------------------------------------------- permissions


def normalise_path(path: str) -> str:
    """Permission-map paths mix cases and placeholder names: lower-case them, every {x} becomes {id}."""
    return re.sub(r"\{[^}]*\}", "{id}", path.strip().lower()).rstrip("/")


def build_permissions(source: Source, schema: Schema) -> dict[str, Any]:
    data = json.loads(source.text)["permissions"]
    grants: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    levels: dict[str, int] = {}
    for name, permission in data.items():
        scheme = permission.get("schemes", {}).get("Application")
        if scheme is None:
            continue
        levels[name] = int(scheme.get("privilegeLevel", 99))
        for path_set in permission.get("pathSets", []):
            if "Application" not in path_set.get("schemeKeys", []):
                continue
            for raw_path, marker in path_set.get("paths", {}).items():
                path = normalise_path(raw_path)
                if not path.startswith(ROOTS):
                    continue
                for method in path_set.get("methods", []):
                    grants[path][method.upper()][name] = marker
    paths: dict[str, dict[str, Any]] = {}
    for path in sorted(grants):
        try:
            resolved = resolve(schema, split_segments(path))
        except ContractError:
            continue  # outside the extract (mail, drives, ...): the simulator does not serve it
        if resolved.permission_path != path:
            continue  # a spelling the resolver would never produce (e.g. a non-key segment written as {id})
        methods: dict[str, Any] = {}
        for method, by_permission in sorted(grants[path].items()):
            least = [p for p, marker in by_permission.items() if _least_for_application(marker)]
            if least:  # several marked: keep the lowest privilege level (the map marks per path set, not per method)
                lowest = min(levels.get(p, 99) for p in least)
                least = sorted(p for p in least if levels.get(p, 99) == lowest)
            entry: dict[str, Any] = {
                "least": least,
                # Lowest privilege level first, so the simulator credits the narrowest permission a token holds.
                "other": sorted((p for p in by_permission if p not in least), key=lambda p: (levels.get(p, 99), p)),
            }
            also = {p: _also_requires(marker) for p, marker in by_permission.items() if _also_requires(marker)}
            if also:
                entry["alsoRequires"] = dict(sorted(also.items()))
            methods[method] = entry
        paths[path] = methods
    return {"source": source.provenance(), "paths": paths}


def _least_for_application(marker: str) -> bool:
    head = marker.split(";", 1)[0]
    return head.startswith("least=") and "Application" in head.removeprefix("least=").split(",")


def _also_requires(marker: str) -> list[str]:
    for part in marker.split(";"):
        if part.startswith("AlsoRequires="):
            return sorted(p for p in part.removeprefix("AlsoRequires=").split(",") if p)
    return []


# ---------------------------------------------------------------- entry point


def write_json(path: Path, data: dict[str, Any]) -> None:
    # One top-level member per line keeps diffs of a regeneration readable.
    lines = ["{"]
    items = list(data.items())
    for index, (key, value) in enumerate(items):
        if isinstance(value, dict) and key in ("paths", "entityTypes", "complexTypes", "enumTypes", "container"):
            lines.append(f"{json.dumps(key)}: {{")
            inner = list(value.items())
            for i, (k, v) in enumerate(inner):
                sep = "," if i < len(inner) - 1 else ""
                lines.append(f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}{sep}")
            lines.append("}" + ("," if index < len(items) - 1 else ""))
        elif isinstance(value, list) and key == "operations":
            lines.append(f"{json.dumps(key)}: [")
            for i, v in enumerate(value):
                sep = "," if i < len(value) - 1 else ""
                lines.append(f"  {json.dumps(v, separators=(',', ':'))}{sep}")
            lines.append("]" + ("," if index < len(items) - 1 else ""))
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}" + ("," if index < len(items) - 1 else ""))
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/graph-contract", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metadata", required=True, help=f"git dir of {METADATA_REPO}, or the {METADATA_PATH} file")
    parser.add_argument("--permissions", required=True, help=f"git dir of {PERMISSIONS_REPO}, or the {PERMISSIONS_PATH} file")
    parser.add_argument("--metadata-commit", help="commit of a plain metadata file")
    parser.add_argument("--permissions-commit", help="commit of a plain permissions file")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: the contract package)")
    args = parser.parse_args(argv)

    metadata = read_source(args.metadata, METADATA_PATH, METADATA_REPO, args.metadata_commit)
    csdl = build_csdl(metadata)
    permissions_source = read_source(args.permissions, PERMISSIONS_PATH, PERMISSIONS_REPO, args.permissions_commit)
    permissions = build_permissions(permissions_source, Schema.from_json(csdl))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "csdl.json", csdl)
    write_json(args.out / "permissions.json", permissions)
    for name in ("csdl.json", "permissions.json"):
        size = (args.out / name).stat().st_size
        print(f"wrote {args.out / name} ({size // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
