"""Draw a workflow: Mermaid source, a self-contained SVG, or an HTML page showing both.

The picture is the IR graph as the author thinks of it: one box per step, plain gotos folded
into the edge they stand for, loop counters kept because they decide something. The SVG is
laid out here in pure Python (layered, Sugiyama style) so that `journeys graph` works offline
and its output can be committed and diffed: the same workflow always gives the same bytes.
"""

from __future__ import annotations

import html
import itertools
import textwrap
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from journeys.compiler import ir
from journeys.compiler import models as m

START = "__start__"  # cannot clash with a node key: those start with a letter or digit
DECISIONS = frozenset({"decision", "split", "ab_split", "wait_for_event"})
WAITS = frozenset({"wait", "wait_until", "wait_for_window"})


@dataclass(frozen=True, slots=True)
class Box:
    key: str
    shape: str  # start, decision, counter, wait, send, action, end, missing
    label: str
    detail: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str
    style: str = ""  # "goto": a plain goto folded in; "loop": a counted jump back


@dataclass(frozen=True, slots=True)
class Diagram:
    boxes: dict[str, Box]
    edges: list[Edge]
    notes: list[str]


def render(journey: ir.Journey, fmt: str) -> str:
    if fmt == "mermaid":
        return mermaid(diagram(journey))
    if fmt == "svg":
        return svg(diagram(journey), journey.workflow.name)
    if fmt == "html":
        return page(journey)
    raise ValueError(f"unknown graph format {fmt!r}: use mermaid, svg or html")


# --- The diagram: what to draw, shared by every format ------------------------------------


def _is_jump(node: ir.Node) -> bool:
    return node.kind == "goto" and not node.step.max_times


def diagram(journey: ir.Journey) -> Diagram:
    triggers = " or ".join(trigger_text(t) for t in journey.workflow.triggers())
    boxes = {START: Box(START, "start", f"When: {triggers}")}
    for node in journey.nodes.values():
        if not _is_jump(node):
            note = getattr(node.step, "note", None) or ""
            boxes[node.key] = Box(node.key, _shape(node), node.label or "Loop", _detail(node), note)
    edges: list[Edge] = []

    def add(source: str, target: str, label: str, style: str = "") -> None:
        jumps: list[str] = []
        while target in journey.nodes and _is_jump(journey.nodes[target]) and target not in jumps:
            jumps.append(target)
            target = journey.nodes[target].branches[0].target
        if jumps:
            label, style = (f"{label} · goto" if label else "goto"), style or "goto"
        if target not in boxes:  # validation reports these; still draw what was written
            text = "End of steps (no end)" if target == ir.FALL_OFF else f"Missing: {target}"
            boxes[target] = Box(target, "missing", text)
        edges.append(Edge(source, target, label, style))

    add(START, journey.start, "")
    for node in journey.nodes.values():
        if _is_jump(node):
            continue
        times = node.step.max_times if node.kind == "goto" else 0
        for branch in node.branches:
            if times:
                add(node.key, branch.target, f"again, up to {times}×", "loop")
            else:
                weight = f" ({branch.weight}%)" if branch.weight is not None else ""
                add(node.key, branch.target, branch.label + weight)
        if node.next is not None:
            add(node.key, node.next, f"after {times}×" if times else "")
    notes = []
    if journey.workflow.goal is not None:
        notes.append(
            f"Goal: {journey.workflow.goal.label} — ends the journey wherever the contact is"
        )
    notes += [f"Exit: {signal.label} — leaves the journey at once" for signal in journey.exits]
    return Diagram(boxes, edges, notes)


def _shape(node: ir.Node) -> str:
    kind = node.kind
    if kind in DECISIONS:
        return "decision"
    if kind == "goto":
        return "counter"
    if kind in WAITS:
        return "wait"
    if kind in ir.TERMINAL_KINDS:
        return "end"
    return "send" if kind in ir.SEND_KINDS else "action"


def _detail(node: ir.Node) -> str:
    step, kind = node.step, node.kind
    if kind in m.SEND_CHANNELS:
        return f"{m.SEND_CHANNELS[kind].replace('_', ' ')} · {step.template}"
    if kind == "notify_team":
        return f"team · {step.template}"
    if kind == "wait":
        return f"wait {step.duration.text}"
    if kind == "wait_until":
        if step.date is not None:
            return f"until {step.date.isoformat()}"
        return f"until {step.attribute}" + (f" {step.offset.text}" if step.offset else "")
    if kind == "wait_for_window":
        return f"window {step.start}–{step.end}" + (
            "" if len(step.days) == 7 else " " + ",".join(step.days)
        )
    if kind == "wait_for_event":
        return f"for {step.event}, up to {step.timeout.text}"
    if kind == "goto":
        return f"loop, at most {step.max_times}×"
    if kind == "repeat":
        after = f" after {step.after.text}" if step.after else ""
        return f"start again{after}" + (f", {step.times} runs" if step.times else "")
    if kind in ("fetch", "webhook"):
        return f"{step.method} {urlsplit(step.url).hostname or step.url}"
    if kind in ("decision", "split", "end"):
        return ""
    fields = ("tag", "list", "stage", "audience", "workflow", "attribute", "by")
    what = next((getattr(step, f) for f in fields if getattr(step, f, None) is not None), "")
    return f"{kind.replace('_', ' ')} {what}".strip()


def trigger_text(trigger: Any) -> str:
    if isinstance(trigger, m.EventTrigger):
        return trigger.event + (f" where {_where(trigger.where)}" if trigger.where else "")
    if isinstance(trigger, m.DateTrigger):
        offset = f" {trigger.offset.text}" if trigger.offset else ""
        return f"date {trigger.date}{offset} ({trigger.recurs}) at {trigger.at}"
    if isinstance(trigger, m.InactivityTrigger):
        return f"inactive for {trigger.inactive_for.text}"
    if isinstance(trigger, m.AttributeChangedTrigger):
        return f"{trigger.attribute_changed} changes"
    kind, _, value = trigger.key().partition(":")
    return f"{kind.replace('_', ' ')}: {value}"


def _where(where: dict[str, Any]) -> str:
    parts = []
    for name, test in where.items():
        if isinstance(test, m.Comparison):
            parts += [f"{name} {op} {value}" for op, value in test.operators().items()]
        else:
            parts.append(f"{name} = {test}")
    return ", ".join(parts)


# --- Mermaid ------------------------------------------------------------------------------

_MERMAID_SHAPES = {
    "start": '(["{}"])',
    "decision": '{{"{}"}}',
    "counter": '{{{{"{}"}}}}',
    "wait": '(["{}"])',
    "end": '((("{}")))',
    "send": '["{}"]',
    "action": '["{}"]',
    "missing": '>"{}"]',
}
# Fill, stroke and text colour of each shape, shared by the Mermaid classes and the SVG.
COLOURS = {
    "start": ("#1e293b", "#1e293b", "#ffffff"),
    "decision": ("#fef3c7", "#d97706", "#1c1917"),
    "counter": ("#ffedd5", "#ea580c", "#1c1917"),
    "wait": ("#ede9fe", "#7c3aed", "#1e1b4b"),
    "end": ("#dcfce7", "#16a34a", "#052e16"),
    "send": ("#dbeafe", "#2563eb", "#0f172a"),
    "action": ("#f1f5f9", "#64748b", "#0f172a"),
    "missing": ("#fee2e2", "#dc2626", "#450a0a"),
    "note": ("#fefce8", "#ca8a04", "#422006"),
}
# `#` first: every other escape introduces one. Mermaid labels are HTML, hence < > &.
_MERMAID_ESCAPES = (
    ("#", "#35;"),
    ('"', "#quot;"),
    ("&", "#amp;"),
    ("<", "#lt;"),
    (">", "#gt;"),
    ("[", "#91;"),
    ("]", "#93;"),
    ("{", "#123;"),
    ("}", "#125;"),
    ("(", "#40;"),
    (")", "#41;"),
    ("|", "#124;"),
    ("`", "#96;"),
)


def mermaid_text(text: str) -> str:
    text = " ".join(text.split())
    for char, code in _MERMAID_ESCAPES:
        text = text.replace(char, code)
    return text


def mermaid(d: Diagram) -> str:
    ids: dict[str, str] = {}
    for key in d.boxes:  # prefixed: a bare id like `end` is a Mermaid keyword
        base = (
            "start"
            if key == START
            else "n_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in key)
        )
        ids[key] = next(
            name
            for n in itertools.count(1)
            if (name := base if n == 1 else f"{base}_{n}") not in ids.values()
        )
    lines = ["flowchart TD"]
    if d.notes:
        lines.append(f'  note["{"<br/>".join(mermaid_text(n) for n in d.notes)}"]')
    lines += [
        f"  {ids[b.key]}{_MERMAID_SHAPES[b.shape].format(mermaid_text(b.label))}"
        for b in d.boxes.values()
    ]
    for e in d.edges:
        arrow = "-.->" if e.style else "-->"
        label = f'|"{mermaid_text(e.label)}"|' if e.label else ""
        lines.append(f"  {ids[e.source]} {arrow}{label} {ids[e.target]}")
    for shape, (fill, stroke, colour) in COLOURS.items():
        members = [ids[b.key] for b in d.boxes.values() if b.shape == shape]
        if shape == "note" and d.notes:
            members = ["note"]
        if members:
            # Prefixed: `end` is a keyword, so it cannot name a class.
            lines.append(f"  classDef j_{shape} fill:{fill},stroke:{stroke},color:{colour}")
            lines.append(f"  class {','.join(members)} j_{shape}")
    return "\n".join(lines) + "\n"


# --- SVG layout ---------------------------------------------------------------------------

CHAR, SMALL_CHAR, LINE, GAP_X, GAP_Y, MARGIN = 7.0, 6.0, 17.0, 36.0, 64.0, 24.0


def wrap(text: str, width: int = 28) -> list[str]:
    while len(lines := textwrap.wrap(text, width) or [""]) > 3:
        width += 4
    return lines


def _size(box: Box) -> tuple[float, float]:
    text = max(len(line) for line in wrap(box.label)) * CHAR
    height = len(wrap(box.label)) * LINE + (14 if box.detail else 0) + 20
    extra = {"decision": 36.0, "counter": 36.0, "wait": 20.0, "start": 20.0}.get(box.shape, 0.0)
    return max(text, len(box.detail) * SMALL_CHAR, 60.0) + 32 + extra, height


@dataclass
class Layout:
    x: dict[str, float]
    y: dict[str, float]
    size: dict[str, tuple[float, float]]
    paths: list[tuple[Edge, list[tuple[float, float]], bool]]  # edge, points, is a back edge


def layout(d: Diagram) -> Layout:
    keys = list(d.boxes)
    out: dict[str, list[int]] = {k: [] for k in keys}
    for i, e in enumerate(d.edges):
        out[e.source].append(i)
    # Depth-first from the start: an edge to a node still on the stack closes a loop. Those
    # are turned round for ranking so the rest is acyclic, and drawn dashed.
    done: dict[str, bool] = {}
    back: set[int] = set()
    for root in keys:
        if root in done:
            continue
        done[root] = False
        stack = [(root, iter(out[root]))]
        while stack:
            for i in stack[-1][1]:
                target = d.edges[i].target
                if target not in done:
                    done[target] = False
                    stack.append((target, iter(out[target])))
                    break
                if not done[target]:
                    back.add(i)
            else:
                done[stack.pop()[0]] = True
    links = [
        (i, *((e.target, e.source) if i in back else (e.source, e.target)))
        for i, e in enumerate(d.edges)
        if e.source != e.target
    ]
    # Longest path from the sources (Kahn's order), so every edge points downwards.
    rank = dict.fromkeys(keys, 0)
    pending = dict.fromkeys(keys, 0)
    for _, _, v in links:
        pending[v] += 1
    queue = [k for k in keys if not pending[k]]
    for u in queue:
        for _, a, v in links:
            if a == u:
                rank[v] = max(rank[v], rank[u] + 1)
                pending[v] -= 1
                if not pending[v]:
                    queue.append(v)
    # Long edges get a dummy vertex per rank crossed, so they route between boxes.
    layers: list[list[str]] = [[] for _ in range(max(rank.values()) + 1)]
    up: dict[str, list[str]] = {k: [] for k in keys}
    down: dict[str, list[str]] = {k: [] for k in keys}
    chains: dict[int, list[str]] = {}
    for k in keys:
        layers[rank[k]].append(k)
    for i, u, v in links:
        chain = [u, *(f"~{i}.{r}" for r in range(rank[u] + 1, rank[v])), v]
        for r, dummy in enumerate(chain[1:-1], rank[u] + 1):
            layers[r].append(dummy)
            up[dummy], down[dummy] = [], []
        for a, b in itertools.pairwise(chain):
            down[a].append(b)
            up[b].append(a)
        chains[i] = chain
    # Start from depth-first order, so branches appear left to right as written.
    order: dict[str, int] = {}
    for root in keys:
        stack = [root]
        while stack:
            if (k := stack.pop()) not in order:
                order[k] = len(order)
                stack.extend(reversed(down[k]))
    for layer in layers:
        layer.sort(key=order.__getitem__)
    layers = _reduce_crossings(layers, up, down)
    size = {k: _size(d.boxes[k]) if k in d.boxes else (0.0, 0.0) for k in order}
    x = _place(layers, size, up, down)
    y: dict[str, float] = {}
    tops, top = [], 0.0
    for layer in layers:
        height = max(size[k][1] for k in layer)
        tops.append((top, top + height))
        y.update((k, top + height / 2) for k in layer)
        top += height + GAP_Y
    paths = []
    for i, u, v in links:
        chain = chains[i]
        points = [_port(chain[0], x[chain[1]], 1, x, y, size, d)]
        for dummy in chain[1:-1]:
            row = tops[int(dummy.rsplit(".", 1)[1])]
            points += [(x[dummy], row[0]), (x[dummy], row[1])]
        points.append(_port(chain[-1], x[chain[-2]], -1, x, y, size, d))
        paths.append((d.edges[i], points[::-1] if i in back else points, i in back))
    return Layout(x, y, size, paths)


def _crossings(layers: list[list[str]], down: dict[str, list[str]]) -> int:
    total = 0
    for upper, lower in itertools.pairwise(layers):
        at = {k: i for i, k in enumerate(lower)}
        ends = [(i, at[b]) for i, a in enumerate(upper) for b in down[a]]
        total += sum(
            (a1 - a2) * (b1 - b2) < 0 for (a1, b1), (a2, b2) in itertools.combinations(ends, 2)
        )
    return total


def _reduce_crossings(
    layers: list[list[str]], up: dict[str, list[str]], down: dict[str, list[str]]
) -> list[list[str]]:
    """Barycenter sweeps down and up, keeping the best order seen (ties keep the old order)."""
    best, fewest = [list(layer) for layer in layers], _crossings(layers, down)
    for sweep in range(8):
        downwards = sweep % 2 == 0
        for r in range(1, len(layers)) if downwards else range(len(layers) - 2, -1, -1):
            ref = {k: i for i, k in enumerate(layers[r - 1 if downwards else r + 1])}
            near = up if downwards else down
            keyed = {
                k: (sum(ref[n] for n in near[k]) / len(near[k]) if near[k] else i, i)
                for i, k in enumerate(layers[r])
            }
            layers[r].sort(key=keyed.__getitem__)
        if (count := _crossings(layers, down)) < fewest:
            best, fewest = [list(layer) for layer in layers], count
    return best


def _place(
    layers: list[list[str]],
    size: dict[str, tuple[float, float]],
    up: dict[str, list[str]],
    down: dict[str, list[str]],
) -> dict[str, float]:
    """Pull each node towards the mean of its neighbours, alternately above and below."""
    x: dict[str, float] = {}
    for layer in layers:
        x.update(zip(layer, _pack(layer, [0.0] * len(layer), size), strict=True))
    for sweep in range(12):
        near = up if sweep % 2 == 0 else down
        for layer in layers if sweep % 2 == 0 else layers[::-1]:
            wanted = [sum(x[n] for n in near[k]) / len(near[k]) if near[k] else x[k] for k in layer]
            x.update(zip(layer, _pack(layer, wanted, size), strict=True))
    return x


def _pack(
    layer: list[str], wanted: list[float], size: dict[str, tuple[float, float]]
) -> list[float]:
    """The positions closest to `wanted` (least squares) that keep order and spacing."""
    offsets = [0.0]
    for a, b in itertools.pairwise(layer):
        real = size[a][1] > 0 and size[b][1] > 0
        offsets.append(offsets[-1] + (size[a][0] + size[b][0]) / 2 + GAP_X / (1 if real else 2))
    blocks: list[list[float]] = []  # pool-adjacent-violators: [sum, count]
    for want, offset in zip(wanted, offsets, strict=True):
        blocks.append([want - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    shifts = [s / n for s, n in blocks for _ in range(int(n))]
    return [shift + offset for shift, offset in zip(shifts, offsets, strict=True)]


def _port(
    key: str,
    toward: float,
    side: int,
    x: dict[str, float],
    y: dict[str, float],
    size: dict[str, tuple[float, float]],
    d: Diagram,
) -> tuple[float, float]:
    """Where an edge meets a box: bottom (side 1) or top (-1), nudged towards its other end
    so that edges leaving one box fan out instead of sharing a point."""
    width, height = size[key]
    inset = {"decision": 20.0, "counter": 20.0, "wait": height / 2, "start": height / 2}
    reach = max(0.0, min(width / 2 - inset.get(d.boxes[key].shape, 14.0) - 4, 36.0))
    return x[key] + max(-reach, min(reach, toward - x[key])), y[key] + side * height / 2


# --- SVG drawing --------------------------------------------------------------------------


def _n(value: float) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _text(
    cx: float, top: float, lines: list[str], colour: str, size: int = 13, weight: str = ""
) -> str:
    bold = ' font-weight="bold"' if weight else ""
    spans = "".join(
        f'<tspan x="{_n(cx)}" y="{_n(top + (i + 0.8) * LINE)}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text text-anchor="middle" font-size="{size}" fill="{colour}"{bold}>{spans}</text>'


def _shape_svg(shape: str, cx: float, cy: float, w: float, h: float) -> str:
    fill, stroke, _ = COLOURS[shape]
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if shape == "end" else 1.5}"'
    if shape in ("decision", "counter"):
        l, r, t, b, i = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2, 18
        pts = [(l, cy), (l + i, t), (r - i, t), (r, cy), (r - i, b), (l + i, b)]
        return f'<polygon points="{" ".join(f"{_n(a)},{_n(c)}" for a, c in pts)}" {paint}/>'
    rx = h / 2 if shape in ("wait", "start") else 14 if shape == "end" else 6
    dash = ' stroke-dasharray="5 3"' if shape in ("missing", "note") else ""
    return (
        f'<rect x="{_n(cx - w / 2)}" y="{_n(cy - h / 2)}" width="{_n(w)}" height="{_n(h)}" '
        f'rx="{_n(rx)}" {paint}{dash}/>'
    )


def _label_spot(
    p: tuple[float, float],
    q: tuple[float, float],
    width: float,
    placed: list[tuple[float, float, float]],
) -> tuple[float, float]:
    """A point on the edge's first curve whose label misses the labels already placed:
    edges leaving one box start close together and drift apart further down."""
    spots = []
    for t in (0.5, 0.72, 0.3, 0.88, 0.12):
        near, far = (1 - t) ** 3 + 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t + t**3
        mid = (p[1] + q[1]) / 2
        y = p[1] * (1 - t) ** 3 + mid * 3 * (1 - t) * t + q[1] * t**3
        spots.append((p[0] * near + q[0] * far, y))
    clear = [
        (x, y)
        for x, y in spots
        if all(abs(x - ox) > (width + ow) / 2 + 2 or abs(y - oy) > 19 for ox, oy, ow in placed)
    ]
    return (clear or spots)[0]


def svg(d: Diagram, title: str) -> str:
    lay = layout(d)
    real = [k for k in d.boxes]
    left = min(lay.x[k] - lay.size[k][0] / 2 for k in lay.x)
    right = max(lay.x[k] + lay.size[k][0] / 2 for k in lay.x)
    bottom = max(lay.y[k] + lay.size[k][1] / 2 for k in real)
    note_w = max([len(n) * CHAR + 28 for n in d.notes], default=0.0)
    note_h = len(d.notes) * LINE + 16 if d.notes else 0.0
    head = 30 + (note_h + 20 if d.notes else 0)
    width = max(right - left, note_w, len(title) * 9.0) + 2 * MARGIN
    height = bottom + head + 2 * MARGIN
    arrow = (
        '<marker id="jg-{0}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" '
        'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto">'
        '<path d="M0,1L10,5L0,9z" fill="{1}"/></marker>'
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="Helvetica, Arial, sans-serif">',
        f"<title>{escape(title)}</title>",
        f"<defs>{arrow.format('arrow', '#475569')}{arrow.format('loop', '#ea580c')}</defs>",
        f'<rect width="{_n(width)}" height="{_n(height)}" fill="#ffffff"/>',
        f'<text x="{_n(MARGIN)}" y="{_n(MARGIN + 14)}" font-size="17" font-weight="bold" '
        f'fill="#0f172a">{escape(title)}</text>',
    ]
    if d.notes:
        parts.append(
            f'<g class="note">{_shape_svg("note", MARGIN + note_w / 2, MARGIN + 30 + note_h / 2, note_w, note_h)}'
        )
        parts += [
            f'<text x="{_n(MARGIN + 14)}" y="{_n(MARGIN + 38 + (i + 0.8) * LINE)}" '
            f'font-size="13" fill="{COLOURS["note"][2]}">{escape(n)}</text>'
            for i, n in enumerate(d.notes)
        ]
        parts.append("</g>")
    parts.append(f'<g transform="translate({_n(MARGIN - left)},{_n(MARGIN + head)})">')
    labels: list[str] = []
    placed: list[tuple[float, float, float]] = []
    for edge, points, is_back in lay.paths:
        colour = "#ea580c" if is_back else "#475569"
        path = f"M{_n(points[0][0])},{_n(points[0][1])}"
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            mid = (y1 + y2) / 2
            path += f" C{_n(x1)},{_n(mid)} {_n(x2)},{_n(mid)} {_n(x2)},{_n(y2)}"
        dash = ' stroke-dasharray="6 4"' if is_back or edge.style else ""
        parts.append(
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"{dash} '
            f'marker-end="url(#jg-{"loop" if is_back else "arrow"})"/>'
        )
        if edge.label:
            w = len(edge.label) * SMALL_CHAR + 10
            cx, cy = _label_spot(points[0], points[1], w, placed)
            placed.append((cx, cy, w))
            labels.append(
                f'<rect x="{_n(cx - w / 2)}" y="{_n(cy - 9)}" width="{_n(w)}" '
                f'height="18" rx="4" fill="#ffffff" fill-opacity="0.92"/>'
                + _text(cx, cy - 9.5, [edge.label], colour, 11)
            )
    for key, box in d.boxes.items():
        (w, h), cx, cy = lay.size[key], lay.x[key], lay.y[key]
        lines, colour = wrap(box.label), COLOURS[box.shape][2]
        top = cy - h / 2 + 10
        tip = escape(box.label + (f"\n{box.note}" if box.note else ""))
        parts.append(
            f'<g class="node {box.shape}" data-key={quoteattr(key)}><title>{tip}</title>'
            + _shape_svg(box.shape, cx, cy, w, h)
            + _text(cx, top, lines, colour)
            + (
                _text(cx, top + len(lines) * LINE - 2, [box.detail], colour, 11)
                if box.detail
                else ""
            )
            + "</g>"
        )
    parts += [*labels, "</g>", "</svg>"]
    return "\n".join(parts) + "\n"


# --- HTML ---------------------------------------------------------------------------------


def settings_text(workflow: m.Workflow) -> list[tuple[str, str]]:
    s = workflow.settings
    re_entry = {"never": "never", "always": "any time"}.get(str(s.re_entry), "") or (
        f"after {s.re_entry.after.text}" if isinstance(s.re_entry, m.ReEntryAfter) else ""
    )
    rows = [("Re-entry", re_entry)]
    if s.frequency_cap:
        rows.append(
            (
                "Frequency cap",
                f"{s.frequency_cap.max} messages per {s.frequency_cap.per.text} (all workflows)",
            )
        )
    if s.quiet_hours:
        rows.append(("Quiet hours", f"{s.quiet_hours.start}–{s.quiet_hours.end}, sends held"))
    rows.append(("Time zone", s.time_zone or "the contact's, else UTC"))
    return rows


_CSS = """body{font:15px/1.5 Helvetica,Arial,sans-serif;color:#0f172a;margin:2rem auto;
max-width:1100px;padding:0 1rem}h1{margin:0 0 .25rem}p.lead{color:#475569;margin-top:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:bold}
dd{margin:0}figure{margin:1.5rem 0;overflow-x:auto;border:1px solid #e2e8f0;border-radius:8px}
figure svg{display:block;max-width:100%;height:auto;margin:auto}pre{background:#f8fafc;
padding:1rem;overflow-x:auto;border-radius:6px}summary{cursor:pointer;font-weight:bold}
footer{color:#64748b;font-size:13px;margin-top:2rem}"""


def page(journey: ir.Journey) -> str:
    wf, d = journey.workflow, diagram(journey)
    rows = [
        (
            "Trigger" + ("s" if len(wf.triggers()) > 1 else ""),
            "; ".join(trigger_text(t) for t in wf.triggers()),
        )
    ]
    if wf.goal:
        rows.append(("Goal", f"{wf.goal.label} ({wf.goal.key()})"))
    if journey.exits:
        rows.append(("Exits", "; ".join(f"{s.label} ({s.key()})" for s in journey.exits)))
    rows += settings_text(wf)
    e = html.escape
    facts = "".join(f"<dt>{e(term)}</dt><dd>{e(text)}</dd>" for term, text in rows)
    lead = f'<p class="lead">{e(wf.description)}</p>' if wf.description else ""
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(wf.name)} · Journeys</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{e(wf.name)}</h1>\n{lead}\n<dl>{facts}</dl>\n"
        f"<figure>\n{svg(d, wf.name)}</figure>\n"
        f"<details>\n<summary>Mermaid source</summary>\n<pre>{e(mermaid(d))}</pre>\n"
        f"</details>\n<footer>{e(wf.id)} · drawn by <code>journeys graph</code> from "
        f"{e(journey.file)}</footer>\n</body>\n</html>\n"
    )
