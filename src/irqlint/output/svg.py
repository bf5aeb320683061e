"""An inline SVG drawing of the lock-order graph around a cycle (for the HTML report).

The layout is fixed, not searched, so the same edges always give the same picture: the
cycle's locks on an ellipse (two locks side by side), locks held before a cycle lock in a row
above it, locks taken under a cycle lock in a row below.  An arrow A -> B means "held A, then
took B"; its label is the function that does it.  Text is measured by a monospace estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import NamedTuple

from ..findings import OrderEdge

CHAR_W = 7.8  # 13px monospace
LABEL_W = 7.2  # 12px monospace
NODE_H = 28.0
ROW_GAP = 140.0
PAD = 16.0


class _Box(NamedTuple):
    x: float  # centre
    y: float
    w: float


def _node_w(name: str) -> float:
    return len(name) * CHAR_W + 20


def _label_w(text: str) -> float:
    return len(text) * LABEL_W + 8


def _cycle_order(edges: Sequence[OrderEdge]) -> list[str]:
    nxt = {e.held: e.taken for e in edges if e.cycle}
    if not nxt:
        return []
    order = [next(e.held for e in edges if e.cycle)]
    while nxt.get(order[-1]) not in (None, order[0]) and len(order) <= len(nxt):
        order.append(nxt[order[-1]])
    return order


def _layout(edges: Sequence[OrderEdge]) -> dict[str, _Box]:
    cycle = _cycle_order(edges)
    on = set(cycle)
    widest_label = max((_label_w(e.function + "()") for e in edges), default=0.0)
    boxes: dict[str, _Box] = {}
    n = len(cycle)
    if n == 2:
        a, b = cycle
        d = _node_w(a) / 2 + _node_w(b) / 2 + max(widest_label + 40, 160)
        boxes[a] = _Box(-d / 2, 0.0, _node_w(a))
        boxes[b] = _Box(d / 2, 0.0, _node_w(b))
    elif n:
        rx = max(_node_w(c) for c in cycle) * 0.75 + widest_label / 2 + 40
        ry = max(90.0, rx * 0.45)
        for i, c in enumerate(cycle):
            t = -math.pi / 2 + 2 * math.pi * i / n
            boxes[c] = _Box(rx * math.cos(t), ry * math.sin(t), _node_w(c))
    top = min((b.y for b in boxes.values()), default=0.0) - ROW_GAP
    bottom = max((b.y for b in boxes.values()), default=0.0) + ROW_GAP
    before = {e.held for e in edges if e.held not in on}
    after = {e.taken for e in edges if e.taken not in on} - before

    def wanted(name: str) -> tuple[float, str]:
        """A row lock wants to sit over (under) the cycle locks it is joined to."""
        xs = [boxes[o].x for e in edges for o in (e.held, e.taken)
              if name in (e.held, e.taken) and o in boxes]
        return (sum(xs) / len(xs) if xs else 0.0, name)

    for row, y in ((before, top), (after, bottom)):
        want = sorted(wanted(c) for c in row)
        placed: list[float] = []
        right = -math.inf
        for x, c in want:  # left to right, pushing each clear of its left neighbour
            w = max(_node_w(c), widest_label) + 30
            placed.append(max(x, right + w / 2))
            right = placed[-1] + w / 2
        shift = (sum(x for x, _ in want) - sum(placed)) / len(placed) if placed else 0.0
        for (_, c), x in zip(want, placed, strict=True):
            boxes[c] = _Box(x + shift, y, _node_w(c))
    return boxes


def _clip(box: _Box, toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from the box's centre toward a point leaves the box."""
    dx, dy = toward[0] - box.x, toward[1] - box.y
    hw, hh = box.w / 2 + 3, NODE_H / 2 + 3
    ts = [hw / abs(dx)] if dx else []
    ts += [hh / abs(dy)] if dy else []
    t = min(ts, default=0.0)
    return box.x + dx * t, box.y + dy * t


def _f(v: float) -> str:
    return f"{v:.1f}"


def _edge(
    e: OrderEdge, p: _Box, q: _Box, bend: float, t: float
) -> tuple[str, str, tuple[float, ...]]:
    """One arrow: its line, its label at `t` along it, and the label's bounding box."""
    mx, my = (p.x + q.x) / 2, (p.y + q.y) / 2
    dx, dy = q.x - p.x, q.y - p.y
    length = math.hypot(dx, dy) or 1.0
    # bend to the left of the direction of travel: A->B and B->A never overlap
    cx, cy = mx + dy / length * bend * length, my - dx / length * bend * length
    x0, y0 = _clip(p, (cx, cy))
    x1, y1 = _clip(q, (cx, cy))
    ux, uy = x1 - cx, y1 - cy
    ul = math.hypot(ux, uy) or 1.0
    ux, uy = ux / ul, uy / ul
    head = [(x1, y1), (x1 - 10 * ux - 4.5 * uy, y1 - 10 * uy + 4.5 * ux),
            (x1 - 10 * ux + 4.5 * uy, y1 - 10 * uy - 4.5 * ux)]
    lx = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x1
    ly = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y1
    label = e.function + "()"
    w = _label_w(label)
    kind = "cycle" if e.cycle else "near"
    tip = f"<title>{escape(f'held {e.held}, then took {e.taken} in {e.function}()')}</title>"
    line = (
        f'<g class="edge {kind}">{tip}'
        f'<path d="M{_f(x0)},{_f(y0)} Q{_f(cx)},{_f(cy)} {_f(x1)},{_f(y1)}" fill="none"/>'
        '<polygon points="' + " ".join(f"{_f(a)},{_f(b)}" for a, b in head) + '"/></g>'
    )
    # an opaque box under the text: lines drawn earlier stop at its edges
    text = (
        f'<g class="label {kind}">{tip}'
        f'<rect x="{_f(lx - w / 2)}" y="{_f(ly - 9)}" width="{_f(w)}" height="18" rx="3"/>'
        f'<text x="{_f(lx)}" y="{_f(ly)}">{escape(label)}</text></g>'
    )
    return line, text, (lx - w / 2, ly - 9, lx + w / 2, ly + 9)


def lock_graph(edges: Sequence[OrderEdge]) -> str:
    """The drawing as an `<svg class="lock-graph">` element; "" for no edges."""
    if not edges:
        return ""
    boxes = _layout(edges)
    pairs = {(e.held, e.taken) for e in edges}
    lines: list[str] = []
    labels: list[str] = []
    nodes: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    cycle = set(_cycle_order(edges))
    for e in sorted(edges, key=lambda e: e.cycle):  # the cycle drawn over the rest
        rev = (e.taken, e.held) in pairs
        bend = 0.22 if rev else (0.12 if e.cycle else 0.0)
        # a label in the middle of a cycle edge; next to the row lock for the others, where
        # the edges fanning out of one cycle lock are furthest apart
        t = 0.5 if e.cycle or rev else (0.22 if e.held not in cycle else 0.78)
        line, text, (x0, y0, x1, y1) = _edge(e, boxes[e.held], boxes[e.taken], bend, t)
        lines.append(line)
        labels.append(text)
        xs += [x0, x1]
        ys += [y0, y1]
    for name, b in sorted(boxes.items()):
        nodes.append(
            f'<g class="node{" cycle" if name in cycle else ""}"><title>{escape(name)}</title>'
            f'<rect x="{_f(b.x - b.w / 2)}" y="{_f(b.y - NODE_H / 2)}" width="{_f(b.w)}" '
            f'height="{_f(NODE_H)}" rx="6"/>'
            f'<text x="{_f(b.x)}" y="{_f(b.y)}">{escape(name)}</text></g>'
        )
        xs += [b.x - b.w / 2, b.x + b.w / 2]
        ys += [b.y - NODE_H / 2, b.y + NODE_H / 2]
    body = lines + nodes + labels
    x0, y0 = min(xs) - PAD, min(ys) - PAD
    w, h = max(xs) + PAD - x0, max(ys) + PAD - y0
    head = (
        f'<svg class="lock-graph" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{_f(w)}" height="{_f(h)}" viewBox="{_f(x0)} {_f(y0)} {_f(w)} {_f(h)}">'
        "<title>lock-order graph: an arrow A to B means B was taken while A was held</title>"
    )
    return head + "".join(body) + "</svg>"
