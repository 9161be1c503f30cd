"""Which $filter operators each directory property supports by default, and which need an advanced query.

From microsoft-graph-docs-contrib concepts/includes/filter-directory-objects.md (the "Default" / "Advanced"
marks per property and operator) and concepts/aad-advanced-queries.md (`ne`, `not` and `endsWith` always need
ConsistencyLevel: eventual + $count=true; `in` follows `eq`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import advanced_operator_message, unsupported_filter_message, unsupported_query
from ..messages import SimRequest
from ..odata import Node, usages
from .common import advanced_query

_ALL_OPS = {"eq", "ne", "not", "gt", "ge", "lt", "le", "in", "startswith", "endswith"}
_OP_NAMES = {"startswith": "startsWith", "endswith": "endsWith"}


@dataclass(frozen=True)
class FilterTable:
    resource: str  # "User", "Group": as Graph names it in its messages
    default_ops: dict[str, set[str]]
    advanced_only: frozenset[str] = frozenset()
    endswith_ok: frozenset[str] = frozenset()
    names: tuple[str, ...] = field(default=())

    def checker(self, req: SimRequest) -> Callable[[Node], None]:
        advanced = advanced_query(req)
        known_names = {n.lower(): n for n in (*self.default_ops, *self.advanced_only, *self.names)}

        def check(node: Node) -> None:
            for prop, op in usages(node):
                base = prop.split("/", 1)[0]
                canonical = known_names.get(base.lower(), base)
                known = canonical in self.default_ops or canonical in self.advanced_only
                allowed_advanced = known and (
                    op in {"eq", "ne", "not", "in", "ge", "le", "gt", "lt", "startswith"}
                    or (op == "endswith" and canonical in self.endswith_ok)
                )
                if not known or not allowed_advanced or op not in _ALL_OPS:
                    raise unsupported_query(unsupported_filter_message(prop, self.resource))
                if op in self.default_ops.get(canonical, set()) or advanced:
                    continue
                if canonical in self.advanced_only:
                    raise unsupported_query(unsupported_filter_message(prop, self.resource))
                raise unsupported_query(advanced_operator_message(_OP_NAMES.get(op, op)))

        return check


USER_FILTERS = FilterTable(
    "User",
    {
        "accountEnabled": {"eq", "in"},
        "city": {"eq", "in", "startswith", "ge"},
        "country": {"eq", "in", "startswith", "ge", "le"},
        "createdDateTime": {"eq", "ge", "le", "gt", "lt"},
        "department": {"eq", "in", "startswith", "ge", "le"},
        "displayName": {"eq", "in", "startswith"},
        "employeeId": {"eq", "in", "startswith"},
        "givenName": {"eq", "in", "startswith", "ge", "le"},
        "id": {"eq", "in"},
        "jobTitle": {"eq", "in", "ge", "le"},
        "mail": {"eq", "in", "startswith", "ge", "le"},
        "mailNickname": {"eq", "in", "startswith", "ge", "le"},
        "onPremisesSyncEnabled": {"eq", "in"},
        "otherMails": {"eq", "startswith", "ge", "le"},
        "proxyAddresses": {"eq", "startswith", "ge", "le"},
        "state": {"eq", "in", "startswith", "ge", "le"},
        "surname": {"eq", "in", "startswith", "ge", "le"},
        "usageLocation": {"eq", "in", "startswith", "ge", "le"},
        "userPrincipalName": {"eq", "in", "startswith", "le"},
        "userType": {"eq", "in"},
    },
    frozenset(
        {
            "companyName",
            "employeeHireDate",
            "employeeType",
            "mobilePhone",
            "officeLocation",
            "onPremisesExtensionAttributes",
            "onPremisesImmutableId",
            "onPremisesSamAccountName",
            "passwordPolicies",
            "postalCode",
            "preferredLanguage",
            "streetAddress",
        }
    ),
    frozenset({"mail", "otherMails", "userPrincipalName", "proxyAddresses"}),
)

GROUP_FILTERS = FilterTable(
    "Group",
    {
        "classification": {"eq", "in", "startswith"},
        "displayName": {"eq", "in", "startswith"},
        "id": {"eq", "in"},
        "isAssignableToRole": {"eq"},
        "mail": {"eq", "in", "startswith"},
        "mailEnabled": {"eq"},
        "mailNickname": {"eq", "in", "startswith"},
        "membershipRule": {"eq", "startswith"},
        "onPremisesSyncEnabled": {"eq"},
        "securityEnabled": {"eq"},
    },
    frozenset({"description", "expirationDateTime", "onPremisesSamAccountName", "preferredLanguage"}),
    frozenset({"mail", "proxyAddresses"}),
)
