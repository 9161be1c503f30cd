"""The slice of OData query options the simulator understands.

`$filter` is parsed with a real tokenizer (string literals use '' to escape a
quote, as OData requires) into a small AST that can be evaluated against a
resource's JSON properties and inspected for operators that Graph only allows
in "advanced queries" (ConsistencyLevel: eventual + $count=true).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import GraphError

# ---------------------------------------------------------------- AST types


@dataclass(frozen=True)
class Prop:
    path: tuple[str, ...]

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Compare:
    op: str  # eq ne gt ge lt le
    left: Prop | Literal
    right: Prop | Literal


@dataclass(frozen=True)
class InList:
    prop: Prop
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Func:
    name: str  # startswith / endswith, lower-cased
    prop: Prop
    value: Any


@dataclass(frozen=True)
class Logical:
    op: str  # and / or
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Compare | InList | Func | Logical | Not

# ---------------------------------------------------------------- tokenizer

_COMPARISON = {"eq", "ne", "gt", "ge", "lt", "le"}
_KEYWORDS = _COMPARISON | {"and", "or", "not", "in"}
_FUNCTIONS = {"startswith", "endswith"}
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
_WORD_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./:\-+]*")


@dataclass(frozen=True)
class Token:
    kind: str  # string | word | ( | ) | ,
    text: str
    pos: int


def filter_syntax_error(expression: str, pos: int) -> GraphError:
    # Graph answers malformed filters with 400 BadRequest "Invalid filter clause".
    return GraphError(
        400,
        "BadRequest",
        f"Invalid filter clause: Syntax error at position {pos} in '{expression}'.",
    )


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(expression)
    while i < n:
        ch = expression[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append(Token(ch, ch, i))
            i += 1
        elif ch == "'":
            start = i
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise filter_syntax_error(expression, start)
                if expression[i] == "'":
                    if i + 1 < n and expression[i + 1] == "'":  # '' is an escaped quote
                        chars.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(expression[i])
                i += 1
            tokens.append(Token("string", "".join(chars), start))
        else:
            match = _WORD_RE.match(expression, i)
            if not match:
                raise filter_syntax_error(expression, i)
            tokens.append(Token("word", match.group(0), i))
            i = match.end()
    return tokens


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.i = 0

    def error(self) -> GraphError:
        pos = self.tokens[self.i].pos if self.i < len(self.tokens) else len(self.expression)
        return filter_syntax_error(self.expression, pos)

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def peek_keyword(self) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text.lower() in _KEYWORDS:
            return tok.text.lower()
        return None

    def take(self, kind: str) -> Token:
        tok = self.peek()
        if tok is None or tok.kind != kind:
            raise self.error()
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error()
        node = self.parse_or()
        if self.peek() is not None:
            raise self.error()
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.peek_keyword() == "or":
            self.i += 1
            node = Logical("or", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.peek_keyword() == "and":
            self.i += 1
            node = Logical("and", node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.peek_keyword() == "not":
            self.i += 1
            return Not(self.parse_not())
        return self.parse_primary()

    def parse_primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error()
        if tok.kind == "(":
            self.i += 1
            node = self.parse_or()
            self.take(")")
            return node
        if tok.kind == "word" and tok.text.lower() in _FUNCTIONS:
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if nxt is not None and nxt.kind == "(":
                return self.parse_function()
        left = self.parse_operand()
        op = self.peek_keyword()
        if op == "in":
            if not isinstance(left, Prop):
                raise self.error()
            self.i += 1
            self.take("(")
            values = [self.parse_literal().value]
            while (tok := self.peek()) is not None and tok.kind == ",":
                self.i += 1
                values.append(self.parse_literal().value)
            self.take(")")
            return InList(left, tuple(values))
        if op not in _COMPARISON:
            raise self.error()
        self.i += 1
        right = self.parse_operand()
        return Compare(op, left, right)

    def parse_function(self) -> Node:
        name = self.take("word").text.lower()
        self.take("(")
        prop = self.parse_operand()
        self.take(",")
        value = self.parse_literal()
        self.take(")")
        if not isinstance(prop, Prop):
            raise self.error()
        return Func(name, prop, value.value)

    def parse_literal(self) -> Literal:
        operand = self.parse_operand()
        if not isinstance(operand, Literal):
            raise self.error()
        return operand

    def parse_operand(self) -> Prop | Literal:
        tok = self.peek()
        if tok is None:
            raise self.error()
        if tok.kind == "string":
            self.i += 1
            return Literal(tok.text)
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            raise self.error()
        self.i += 1
        text = tok.text
        lowered = text.lower()
        if lowered in ("true", "false"):
            return Literal(lowered == "true")
        if lowered == "null":
            return Literal(None)
        if _NUMBER_RE.match(text):
            return Literal(float(text) if "." in text else int(text))
        if text[0].isdigit():
            # Unquoted GUIDs and DateTimeOffset literals compare as strings.
            return Literal(text)
        if "(" in text or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$", text):
            raise filter_syntax_error(self.expression, tok.pos)
        return Prop(tuple(text.split("/")))


def parse_filter(expression: str) -> Node:
    return _Parser(expression).parse()


# ---------------------------------------------------------------- evaluation


def resolve(resource: Mapping[str, Any], prop: Prop) -> Any:
    current: Any = resource
    for part in prop.path:
        if not isinstance(current, Mapping):
            return None
        # Graph property names are matched case-insensitively by the directory.
        key = next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            return None
        current = current[key]
    return current


def _norm(value: Any) -> Any:
    # Directory string comparisons are case-insensitive.
    return value.lower() if isinstance(value, str) else value


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, list):  # collection properties: any element matches
        return any(_compare(op, item, right) for item in left)
    a, b = _norm(left), _norm(right)
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        results: dict[str, bool] = {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}
        return results[op]
    except TypeError:
        return False


def evaluate(node: Node, resource: Mapping[str, Any]) -> bool:
    if isinstance(node, Logical):
        if node.op == "and":
            return evaluate(node.left, resource) and evaluate(node.right, resource)
        return evaluate(node.left, resource) or evaluate(node.right, resource)
    if isinstance(node, Not):
        return not evaluate(node.operand, resource)
    if isinstance(node, InList):
        value = _norm(resolve(resource, node.prop))
        return any(value == _norm(v) for v in node.values)
    if isinstance(node, Func):
        value = resolve(resource, node.prop)
        if not isinstance(value, str) or not isinstance(node.value, str):
            return False
        if node.name == "startswith":
            return value.lower().startswith(node.value.lower())
        return value.lower().endswith(node.value.lower())
    left = resolve(resource, node.left) if isinstance(node.left, Prop) else node.left.value
    right = resolve(resource, node.right) if isinstance(node.right, Prop) else node.right.value
    return _compare(node.op, left, right)


def usages(node: Node) -> list[tuple[str, str]]:
    """(property, operator) pairs in the expression, for capability checks."""
    if isinstance(node, Logical):
        return usages(node.left) + usages(node.right)
    if isinstance(node, Not):
        return [(name, "not") for name, _ in usages(node.operand)] + usages(node.operand)
    if isinstance(node, InList):
        return [(node.prop.name, "in")]
    if isinstance(node, Func):
        return [(node.prop.name, node.name)]
    names = [side.name for side in (node.left, node.right) if isinstance(side, Prop)]
    return [(name, node.op) for name in names]


# ---------------------------------------------------------------- $select


def parse_select(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    fields = [f.strip() for f in raw.split(",") if f.strip()]
    return fields or None


def project(
    resource: Mapping[str, Any],
    select: Sequence[str] | None,
    default_fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Apply $select (case-insensitive names) or the resource's default property set."""
    wanted = select if select is not None else default_fields
    if wanted is None:
        return dict(resource)
    out: dict[str, Any] = {}
    for name in wanted:
        key = next((k for k in resource if k.lower() == name.lower()), None)
        if key is not None:
            out[key] = resource[key]
    return out


def select_context(entity_set: str, select: Sequence[str] | None) -> str:
    if select:
        return f"https://graph.microsoft.com/v1.0/$metadata#{entity_set}({','.join(select)})"
    return f"https://graph.microsoft.com/v1.0/$metadata#{entity_set}"


def apply_filter(
    items: Sequence[Mapping[str, Any]],
    expression: str | None,
    check: Callable[[Node], None] | None = None,
) -> list[Mapping[str, Any]]:
    if expression is None:
        return list(items)
    node = parse_filter(expression)
    if check is not None:
        check(node)
    return [item for item in items if evaluate(node, item)]
