"""tree-sitter-c set-up: one parser and the compiled queries, built once per process."""

from __future__ import annotations

from functools import cache, lru_cache

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

LANGUAGE = Language(tree_sitter_c.language())

# One query, one traversal of the tree: every syntactic fact the extractor reads.
FACTS_QUERY = """
(function_definition) @function
(call_expression function: (identifier) @call.name)
(call_expression function: (field_expression) @call.via)
(call_expression function: (parenthesized_expression) @call.via)
(call_expression function: (call_expression) @call.inner)
(declaration) @decl
(assignment_expression left: (_) @assign.lhs)
(initializer_pair designator: (field_designator (field_identifier)) value: (identifier) @init.value)
(struct_specifier body: (field_declaration_list)) @struct
(if_statement condition: (parenthesized_expression [(identifier) (field_expression)] @if.flag))
(if_statement condition: (parenthesized_expression
  (unary_expression operator: "!" argument: [(identifier) (field_expression)] @if.flag)))
(if_statement condition: (parenthesized_expression
  (binary_expression left: [(identifier) (field_expression)] @if.cmp right: (identifier))))
(switch_statement condition: (parenthesized_expression
  [(identifier) (field_expression)] @switch.flag))
(if_statement condition: (parenthesized_expression
  (binary_expression operator: "&&") @if.and))
(if_statement condition: (parenthesized_expression (unary_expression operator: "!"
  argument: (parenthesized_expression
    (binary_expression left: [(identifier) (field_expression)] @if.cmp
      right: (identifier))))))
(argument_list [(true) (false) (null) (number_literal)] @call.const)
(argument_list (binary_expression operator: "|") @call.const)
(argument_list (identifier) @call.idarg)
(if_statement condition: (parenthesized_expression
  (call_expression function: (identifier) @if.warn)))
(if_statement condition: (parenthesized_expression (unary_expression operator: "!"
  argument: (call_expression function: (identifier) @if.notcall))))
(update_expression argument: (identifier) @changed)
(pointer_expression operator: "&" argument: (identifier) @changed)
(update_expression argument: (field_expression) @changed.field)
(pointer_expression operator: "&" argument: (field_expression) @changed.field)
"""

_QUERIES = {
    "facts": FACTS_QUERY,
    "errors": "(ERROR) @e",
}


@lru_cache(maxsize=1)
def parser() -> Parser:
    return Parser(LANGUAGE)


@cache
def query(name: str) -> Query:
    return Query(LANGUAGE, _QUERIES[name])


def parse(text: bytes) -> Tree:
    return parser().parse(text)


def _span(n: Node) -> tuple[int, int]:
    return n.start_byte, n.end_byte


def captures(name: str, node: Node) -> dict[str, list[Node]]:
    """Each capture's nodes in source order (the binding's own order differs from one
    process to the next, and the facts, their cache entries included, must not)."""
    return {k: sorted(v, key=_span) for k, v in QueryCursor(query(name)).captures(node).items()}

