"""tree-sitter-c set-up: one parser and the compiled queries, built once per process."""

from __future__ import annotations

from functools import lru_cache

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

LANGUAGE = Language(tree_sitter_c.language())

_QUERIES = {
    "functions": "(function_definition) @f",
    "calls": "(call_expression function: (_) @fn arguments: (argument_list) @args) @call",
    "decls": "(declaration) @d",
    "structs": "(struct_specifier name: (type_identifier) @name body: (field_declaration_list) @body)",
    "assigns": "(assignment_expression left: (_) @lhs right: (_) @rhs) @a",
    "inits": "(initializer_pair designator: (field_designator (field_identifier) @field) value: (_) @value) @p",
    "fields": "(field_expression) @f",
    "errors": "(ERROR) @e",
}


@lru_cache(maxsize=1)
def parser() -> Parser:
    return Parser(LANGUAGE)


@lru_cache(maxsize=None)
def query(name: str) -> Query:
    return Query(LANGUAGE, _QUERIES[name])


def parse(text: bytes) -> Tree:
    return parser().parse(text)


def captures(name: str, node: Node) -> dict[str, list[Node]]:
    return QueryCursor(query(name)).captures(node)


def matches(name: str, node: Node) -> list[tuple[int, dict[str, list[Node]]]]:
    return QueryCursor(query(name)).matches(node)
