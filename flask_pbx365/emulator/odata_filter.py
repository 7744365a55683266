"""A small OData ``$filter`` parser for directory objects: ``eq``, ``ne``, ``and``, ``or``, ``not``,
``startswith(prop,'x')``, ``prop in ('a','b')`` and parentheses, over a whitelist of properties.

String comparisons are case-insensitive, as the directory's are. Anything else is
:class:`UnsupportedFilter` (the caller answers 400 ``Request_UnsupportedQuery``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

Predicate = Callable[[dict], bool]

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),])|(?P<word>[A-Za-z_$@][\w$@./]*))")


class UnsupportedFilter(ValueError):
    """The filter uses a property, operator or syntax this endpoint does not support."""


@dataclass
class ParsedFilter:
    predicate: Predicate
    properties: set[str]
    advanced: bool  # uses ne/not: Graph requires ConsistencyLevel: eventual and $count=true
    ids: list[str]


def _tokens(text: str) -> list[tuple[str, Any]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise UnsupportedFilter(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        pos = m.end()
        if m.group("str") is not None:
            out.append(("lit", m.group("str")[1:-1].replace("''", "'")))
        elif m.group("num") is not None:
            out.append(("lit", float(m.group("num")) if "." in m.group("num") else int(m.group("num"))))
        elif m.group("punct"):
            out.append((m.group("punct"), m.group("punct")))
        else:
            word = m.group("word")
            low = word.lower()
            if low in ("true", "false"):
                out.append(("lit", low == "true"))
            elif low == "null":
                out.append(("lit", None))
            else:
                out.append(("word", word))
    return out


def _norm(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


class _Parser:
    def __init__(self, text: str, allowed: set[str]):
        self.toks = _tokens(text)
        self.i = 0
        self.allowed = {a.lower(): a for a in allowed}
        self.props: set[str] = set()
        self.advanced = False
        self.ids: list[str] = []

    def peek(self, kind: str | None = None, value: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        return (kind is None or k == kind) and (value is None or (isinstance(v, str) and v.lower() == value))

    def take(self, kind: str, value: str | None = None) -> Any:
        if not self.peek(kind, value):
            got = self.toks[self.i][1] if self.i < len(self.toks) else "end of filter"
            raise UnsupportedFilter(f"Invalid filter clause: expected {value or kind} but found '{got}'.")
        self.i += 1
        return self.toks[self.i - 1][1]

    def prop(self) -> str:
        name = self.take("word")
        real = self.allowed.get(name.lower())
        if real is None:
            raise UnsupportedFilter(f"Unsupported or invalid query filter clause specified for property '{name}' "
                                    "of resource 'User'.")
        self.props.add(real)
        return real

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.i != len(self.toks):
            raise UnsupportedFilter(f"Invalid filter clause: unexpected '{self.toks[self.i][1]}'.")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.peek("word", "or"):
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda o: any(p(o) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.peek("word", "and"):
            self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))

    def unary(self) -> Predicate:
        if self.peek("word", "not"):
            self.i += 1
            self.advanced = True
            inner = self.unary()
            return lambda o: not inner(o)
        if self.peek("("):
            self.i += 1
            inner = self.or_expr()
            self.take(")")
            return inner
        if self.peek("word", "startswith"):
            self.i += 1
            self.take("(")
            prop = self.prop()
            self.take(",")
            value = self.take("lit")
            self.take(")")
            if not isinstance(value, str):
                raise UnsupportedFilter("startswith needs a string literal.")
            low = value.lower()
            return lambda o: isinstance(o.get(prop), str) and o[prop].lower().startswith(low)
        prop = self.prop()
        op = self.take("word").lower()
        if op == "in":
            self.take("(")
            values = [self.take("lit")]
            while self.peek(","):
                self.i += 1
                values.append(self.take("lit"))
            self.take(")")
            wanted = {_norm(v) for v in values}
            if prop == "id":
                self.ids.extend(str(v) for v in values)
            return lambda o: _norm(o.get(prop)) in wanted
        if op not in ("eq", "ne"):
            raise UnsupportedFilter(f"Unsupported query operator '{op}' for property '{prop}'.")
        value = _norm(self.take("lit"))
        if op == "ne":
            self.advanced = True
            return lambda o: _norm(o.get(prop)) != value
        if prop == "id":
            self.ids.append(str(value))
        return lambda o: _norm(o.get(prop)) == value


def parse_filter(text: str, allowed: set[str]) -> ParsedFilter:
    """Parse ``text`` into a predicate over object dicts whose properties are in ``allowed``."""
    p = _Parser(text, allowed)
    return ParsedFilter(p.parse(), p.props, p.advanced, p.ids)
