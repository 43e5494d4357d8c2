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

START, GOAL = "__start__", "__goal__"  # node keys start with a letter or digit: no clash
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
    goal, goal_start = journey.workflow.goal, journey.goal_start
    if goal is not None and goal_start is not None:  # the goal's `then` steps (newer IRs)
        boxes[GOAL] = Box(GOAL, "start", f"Goal reached: {goal.label}")
    for node in journey.nodes.values():
        if not _is_jump(node):
            note = getattr(node.step, "note", None) or ""
            boxes[node.key] = Box(
                node.key, _shape(node.kind), node.label or "Loop", _detail(node), note
            )
    edges: list[Edge] = []

    def add(source: str, target: str, label: str, style: str = "") -> None:
        jumps: list[str] = []
        while target in journey.nodes and _is_jump(journey.nodes[target]) and target not in jumps:
            jumps.append(target)
            target = journey.nodes[target].branches[0].target
        if jumps:
            label, style = (f"{label} · goto" if label else "goto"), style or "goto"
        if target == ir.GOAL_DONE:
            boxes.setdefault(target, Box(target, "end", "Goal reached"))
        elif target not in boxes:  # validation reports these; still draw what was written
            text = "End of steps (no end)" if target == ir.FALL_OFF else f"Missing: {target}"
            boxes[target] = Box(target, "missing", text)
        for n, old in enumerate(edges):  # both ways lead on: one edge, "Yes / No"
            if (old.source, old.target) == (source, target):
                label = " / ".join(text for text in (old.label, label) if text)
                edges[n] = Edge(source, target, label, old.style or style)
                return
        edges.append(Edge(source, target, label, style))

    add(START, journey.start, "")
    if GOAL in boxes:
        add(GOAL, goal_start or "", "")
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
    notes = [f"Goal: {goal.label} — ends the journey wherever the contact is"] if goal else []
    notes += [f"Exit: {signal.label} — leaves the journey at once" for signal in journey.exits]
    return Diagram(boxes, edges, notes)


def _shape(kind: str) -> str:
    if kind in DECISIONS or kind == "goto":
        return "decision" if kind in DECISIONS else "counter"
    if kind in WAITS or kind in ir.TERMINAL_KINDS:
        return "wait" if kind in WAITS else "end"
    return "send" if kind in ir.SEND_KINDS else "action"


def _detail(node: ir.Node) -> str:
    step, kind = node.step, node.kind
    if kind in ir.SEND_KINDS:
        return f"{m.SEND_CHANNELS.get(kind, 'team').replace('_', ' ')} · {step.template}"
    if kind == "wait":
        return f"wait {step.duration.text}"
    if kind == "wait_for_event":
        return f"for {step.event}, up to {step.timeout.text}"
    if kind == "wait_for_window":
        return f"window {step.start}–{step.end}"
    if kind == "goto":
        return f"loop, at most {step.max_times}×"
    if kind == "repeat":
        return "start again" + (f" after {step.after.text}" if step.after else "")
    if kind in ("fetch", "webhook"):
        return f"{step.method} {urlsplit(step.url).hostname}"
    return "" if kind in DECISIONS | WAITS | {"end"} else kind.replace("_", " ")


def trigger_text(trigger: Any) -> str:
    kind, _, value = trigger.key().partition(":")
    return value if kind == "event" else f"{kind.replace('_', ' ')}: {value}"


# --- Mermaid ------------------------------------------------------------------------------

# Per shape: fill, stroke and text colour (shared with the SVG), then Mermaid's brackets.
_STYLE = """
start    #1e293b #1e293b #ffffff ([ ])
decision #fef3c7 #d97706 #1c1917 {  }
counter  #ffedd5 #ea580c #1c1917 {{ }}
wait     #ede9fe #7c3aed #1e1b4b ([ ])
end      #dcfce7 #16a34a #052e16 ((( )))
send     #dbeafe #2563eb #0f172a [  ]
action   #f1f5f9 #64748b #0f172a [  ]
missing  #fee2e2 #dc2626 #450a0a >  ]
note     #fefce8 #ca8a04 #422006 [  ]
"""
STYLES = {name: tuple(rest) for name, *rest in map(str.split, _STYLE.strip().splitlines())}
_SPECIAL = set('#"&<>[]{}()|`')  # Mermaid labels are HTML, and brackets end them early


def mermaid_text(text: str) -> str:
    return "".join(
        "#quot;" if c == '"' else f"#{ord(c)};" if c in _SPECIAL else c
        for c in " ".join(text.split())
    )


def _mermaid_node(ident: str, shape: str, text: str) -> str:
    return f'  {ident}{STYLES[shape][3]}"{text}"{STYLES[shape][4]}'


def mermaid(d: Diagram) -> str:
    ids: dict[str, str] = {}
    for key in d.boxes:  # prefixed: a bare id such as `end` is a Mermaid keyword
        base = "n_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in key)
        base = {START: "start", GOAL: "goal"}.get(key, base)
        ident, n = base, 1
        while ident in ids.values():
            n += 1
            ident = f"{base}_{n}"
        ids[key] = ident
    lines = ["flowchart TD"]
    if d.notes:
        lines.append(_mermaid_node("note", "note", "<br/>".join(map(mermaid_text, d.notes))))
    lines += [_mermaid_node(ids[b.key], b.shape, mermaid_text(b.label)) for b in d.boxes.values()]
    for e in d.edges:
        label = f'|"{mermaid_text(e.label)}"|' if e.label else ""
        lines.append(f"  {ids[e.source]} {'-.->' if e.style else '-->'}{label} {ids[e.target]}")
    for shape, (fill, stroke, colour, *_) in STYLES.items():
        members = [ids[b.key] for b in d.boxes.values() if b.shape == shape]
        members += ["note"] if shape == "note" and d.notes else []
        if members:  # class names prefixed for the same reason as ids
            lines.append(f"  classDef j_{shape} fill:{fill},stroke:{stroke},color:{colour}")
            lines.append(f"  class {','.join(members)} j_{shape}")
    return "\n".join(lines) + "\n"


# --- SVG layout ---------------------------------------------------------------------------

CHAR, SMALL_CHAR, LINE, GAP_X, GAP_Y, MARGIN = 7.0, 6.0, 17.0, 36.0, 64.0, 24.0
Point = tuple[float, float]
Adjacency = dict[str, list[str]]


def wrap(text: str, width: int = 28) -> list[str]:
    """At most three lines of about equal length: "+ 20 % off" rather than a lone "off"."""
    count = min(3, max(1, -(-len(text) // width)))
    width = max(1, -(-len(text) // count))
    while len(lines := textwrap.wrap(text, width) or [""]) > count:
        width += 1
    return lines


def lines_of(box: Box) -> tuple[list[str], str]:
    """The label's lines and the detail as drawn; a long detail widens the label's lines."""
    detail = box.detail if len(box.detail) <= 36 else box.detail[:35] + "…"
    return wrap(box.label, max(28, int(len(detail) * SMALL_CHAR / CHAR))), detail


def _size(box: Box) -> Point:
    lines, detail = lines_of(box)
    extra = {"decision": 36, "counter": 36, "wait": 20, "start": 20}.get(box.shape, 0)
    width = max(max(map(len, lines)) * CHAR, len(detail) * SMALL_CHAR, 60.0) + 32 + extra
    return width, len(lines) * LINE + (14 if detail else 0) + 20


@dataclass
class Layout:
    x: dict[str, float]
    y: dict[str, float]
    size: dict[str, Point]
    paths: list[tuple[Edge, list[Point], bool]]  # edge, points to draw through, is it a loop


def layout(d: Diagram) -> Layout:
    keys = list(d.boxes)
    out: dict[str, list[int]] = {k: [] for k in keys}
    for i, e in enumerate(d.edges):
        out[e.source].append(i)
    # Depth-first from the start: an edge to a node still on the stack closes a loop. Loops
    # are turned round for ranking, so that the rest is acyclic, and drawn dashed.
    done: dict[str, bool] = {}
    back: set[int] = set()
    for root in keys:
        stack = [] if root in done else [(root, iter(out[root]))]
        done.setdefault(root, False)
        while stack:
            for i in stack[-1][1]:
                if (target := d.edges[i].target) not in done:
                    done[target] = False
                    stack.append((target, iter(out[target])))
                    break
                if not done[target]:
                    back.add(i)
            else:
                done[stack.pop()[0]] = True
    links = [
        (i, e.target, e.source) if i in back else (i, e.source, e.target)
        for i, e in enumerate(d.edges)
        if e.source != e.target
    ]
    # Rank by longest path from the sources (in Kahn's order): every edge points down.
    rank, pending = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    for _, _, v in links:
        pending[v] += 1
    queue = [k for k in keys if not pending[k]]
    for u in queue:
        for _, a, v in links:
            if a == u:
                rank[v], pending[v] = max(rank[v], rank[u] + 1), pending[v] - 1
                queue += [] if pending[v] else [v]
    # A long edge gets a dummy vertex in each rank it crosses, so it routes between boxes.
    layers: list[list[str]] = [[] for _ in range(max(rank.values()) + 1)]
    up: Adjacency = {k: [] for k in keys}
    down: Adjacency = {k: [] for k in keys}
    chains: dict[int, list[str]] = {}
    for k in keys:
        layers[rank[k]].append(k)
    for i, u, v in links:
        chains[i] = chain = [u, *(f"~{i}.{r}" for r in range(rank[u] + 1, rank[v])), v]
        for r, dummy in enumerate(chain[1:-1], rank[u] + 1):
            layers[r].append(dummy)
            up[dummy], down[dummy] = [], []
        for a, b in itertools.pairwise(chain):
            down[a].append(b)
            up[b].append(a)
    # Start from depth-first order, so that branches appear left to right as written.
    order: dict[str, int] = {}
    for root in keys:
        todo = [root]
        while todo:
            if (k := todo.pop()) not in order:
                order[k] = len(order)
                todo.extend(reversed(down[k]))
    for layer in layers:
        layer.sort(key=order.__getitem__)
    layers = _reduce_crossings(layers, up, down)
    size = {k: _size(d.boxes[k]) if k in d.boxes else (0.0, 0.0) for k in order}
    x = _place(layers, size, up, down)
    y: dict[str, float] = {}
    rows, top = [], 0.0
    for layer in layers:
        height = max(size[k][1] for k in layer)
        rows.append((top, top + height))
        y.update((k, top + height / 2) for k in layer)
        # Edges reaching far sideways get more height, or their curves lie almost flat.
        span = max((abs(x[a] - x[b]) for a in layer for b in down[a]), default=0.0)
        top += height + GAP_Y + min(60.0, max(0.0, span - 150) / 8)

    def port(key: str, toward: str, side: int) -> Point:
        # Nudged towards the other end, so that edges leaving one box fan out.
        width, height = size[key]
        inset = height / 2 if d.boxes[key].shape in ("wait", "start") else 20.0
        reach = max(0.0, min(width / 2 - inset, 36.0))
        return x[key] + max(-reach, min(reach, x[toward] - x[key])), y[key] + side * height / 2

    paths = []
    for i, _, _ in links:
        chain = chains[i]
        points = [port(chain[0], chain[1], 1)]
        for dummy in chain[1:-1]:
            row = rows[int(dummy.rsplit(".", 1)[1])]
            points += [(x[dummy], row[0]), (x[dummy], row[1])]
        points.append(port(chain[-1], chain[-2], -1))
        paths.append((d.edges[i], points[::-1] if i in back else points, i in back))
    return Layout(x, y, size, paths)


def _crossings(layers: list[list[str]], down: Adjacency) -> int:
    total = 0
    for upper, lower in itertools.pairwise(layers):
        at = {k: i for i, k in enumerate(lower)}
        ends = [(i, at[b]) for i, a in enumerate(upper) for b in down[a]]
        pairs = itertools.combinations(ends, 2)
        total += sum((a1 - a2) * (b1 - b2) < 0 for (a1, b1), (a2, b2) in pairs)
    return total


def _reduce_crossings(layers: list[list[str]], up: Adjacency, down: Adjacency) -> list[list[str]]:
    """Barycenter sweeps down and up, keeping the best order seen (ties keep the old order)."""
    best, fewest = [list(layer) for layer in layers], _crossings(layers, down)
    for sweep in range(8):
        downwards, last = sweep % 2 == 0, len(layers) - 1
        for r in range(1, last + 1) if downwards else range(last - 1, -1, -1):
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
    layers: list[list[str]], size: dict[str, Point], up: Adjacency, down: Adjacency
) -> dict[str, float]:
    """Pull each node towards the mean of its neighbours, above and below in turn."""
    x = {k: 0.0 for layer in layers for k in layer}
    for sweep in range(13):
        near = up if sweep % 2 else down
        for layer in layers if sweep % 2 else layers[::-1]:
            wanted = [sum(x[n] for n in near[k]) / len(near[k]) if near[k] else x[k] for k in layer]
            x.update(zip(layer, _pack(layer, wanted, size), strict=True))
    return x


def _pack(layer: list[str], wanted: list[float], size: dict[str, Point]) -> list[float]:
    """The positions nearest `wanted` (least squares) that keep the order and the gaps:
    isotonic regression by pool-adjacent-violators on position minus minimum offset."""
    offsets = [0.0]
    for a, b in itertools.pairwise(layer):
        gap = GAP_X if size[a][1] and size[b][1] else GAP_X / 2  # dummies sit closer
        offsets.append(offsets[-1] + (size[a][0] + size[b][0]) / 2 + gap)
    blocks: list[list[float]] = []  # [sum, count]
    for want, offset in zip(wanted, offsets, strict=True):
        blocks.append([want - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1] = [blocks[-1][0] + total, blocks[-1][1] + count]
    shifts = [total / count for total, count in blocks for _ in range(int(count))]
    return [shift + offset for shift, offset in zip(shifts, offsets, strict=True)]


# --- SVG drawing --------------------------------------------------------------------------


def _n(value: float) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _el(tag: str, body: str = "", /, **attrs: str | float) -> str:
    """An element; `body` is markup already. Attribute names: class_ -> class, a_b -> a-b."""
    text = "".join(
        f" {name.rstrip('_').replace('_', '-')}="
        + quoteattr(value if isinstance(value, str) else _n(value))
        for name, value in attrs.items()
    )
    return f"<{tag}{text}>{body}</{tag}>" if body else f"<{tag}{text}/>"


def _text(cx: float, top: float, lines: list[str], fill: str, size: int = 13) -> str:
    spans = "".join(
        _el("tspan", escape(line), x=cx, y=top + (i + 0.8) * LINE) for i, line in enumerate(lines)
    )
    return _el("text", spans, text_anchor="middle", font_size=size, fill=fill)


def _shape_svg(shape: str, cx: float, cy: float, w: float, h: float) -> str:
    fill, stroke, *_ = STYLES[shape]
    paint: dict[str, str | float] = {"fill": fill, "stroke": stroke}
    paint["stroke_width"] = 2.0 if shape == "end" else 1.5
    if shape in ("missing", "note"):
        paint["stroke_dasharray"] = "5 3"
    if shape in ("decision", "counter"):
        x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
        pts = [(x0, cy), (x0 + 18, y0), (x1 - 18, y0), (x1, cy), (x1 - 18, y1), (x0 + 18, y1)]
        return _el("polygon", points=" ".join(f"{_n(a)},{_n(b)}" for a, b in pts), **paint)
    rx = h / 2 if shape in ("wait", "start") else 14 if shape == "end" else 6
    return _el("rect", x=cx - w / 2, y=cy - h / 2, width=w, height=h, rx=rx, **paint)


def _label_spot(p: Point, q: Point, width: float, placed: list[tuple[float, ...]]) -> Point:
    """A point on the edge's first curve where its label misses those already placed:
    edges leaving one box start close together and drift apart further down."""
    spots, mid = [], (p[1] + q[1]) / 2
    for t in (0.5, 0.72, 0.3, 0.88, 0.12):
        s, u = t * t * (3 - 2 * t), 1 - t  # the x blend of a vertical-tangent cubic
        spots.append((p[0] + (q[0] - p[0]) * s, p[1] * u**3 + mid * 3 * u * t + q[1] * t**3))
    for x, y in spots:
        if all(abs(x - ox) > (width + ow) / 2 + 2 or abs(y - oy) > 19 for ox, oy, ow in placed):
            return x, y
    return spots[0]


_ARROW = (
    '<marker id="jg-{0}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" '
    'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto">'
    '<path d="M0,1L10,5L0,9z" fill="{1}"/></marker>'
)


def svg(d: Diagram, title: str) -> str:
    lay = layout(d)
    left = min(lay.x[k] - lay.size[k][0] / 2 for k in lay.x)
    right = max(lay.x[k] + lay.size[k][0] / 2 for k in lay.x)
    bottom = max(lay.y[k] + lay.size[k][1] / 2 for k in lay.x)
    note_w = max([len(n) * CHAR + 28 for n in d.notes], default=0.0)
    note_h = len(d.notes) * LINE + 16
    head = 30 + (note_h + 20 if d.notes else 0)
    width = max(right - left, note_w, len(title) * 9.0) + 2 * MARGIN
    height = bottom + head + 2 * MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="Helvetica, Arial, sans-serif">',
        _el("title", escape(title)),
        _el("defs", _ARROW.format("arrow", "#475569") + _ARROW.format("loop", "#ea580c")),
        _el("rect", width=width, height=height, fill="#ffffff"),
        _el("text", escape(title), x=MARGIN, y=MARGIN + 14, font_size=17, font_weight="bold"),
    ]
    if d.notes:
        box = _shape_svg("note", MARGIN + note_w / 2, MARGIN + 30 + note_h / 2, note_w, note_h)
        lines = "".join(
            _el("tspan", escape(note), x=MARGIN + 14, y=MARGIN + 38 + (i + 0.8) * LINE)
            for i, note in enumerate(d.notes)
        )
        text = _el("text", lines, font_size=13, fill=STYLES["note"][2])
        parts.append(_el("g", box + text, class_="note"))
    parts.append(f'<g transform="translate({_n(MARGIN - left)},{_n(MARGIN + head)})">')
    labels: list[str] = []
    placed: list[tuple[float, ...]] = []
    for edge, points, is_loop in lay.paths:
        colour = "#ea580c" if is_loop else "#475569"
        path = f"M{_n(points[0][0])},{_n(points[0][1])}"
        for (x1, y1), (x2, y2) in itertools.pairwise(points):  # vertical S-curves
            ym = _n((y1 + y2) / 2)
            path += f" C{_n(x1)},{ym} {_n(x2)},{ym} {_n(x2)},{_n(y2)}"
        style: dict[str, str | float] = {"fill": "none", "stroke": colour, "stroke_width": 1.5}
        if is_loop or edge.style:
            style["stroke_dasharray"] = "6 4"
        parts.append(
            _el("path", d=path, marker_end=f"url(#jg-{'loop' if is_loop else 'arrow'})", **style)
        )
        if edge.label:
            w = len(edge.label) * SMALL_CHAR + 10
            cx, cy = _label_spot(points[0], points[1], w, placed)
            placed.append((cx, cy, w))
            back = _el("rect", x=cx - w / 2, y=cy - 9, width=w, height=18.0, rx=4.0, fill="#fff")
            labels.append(back + _text(cx, cy - 9.5, [edge.label], colour, 11))
    for key, box_ in d.boxes.items():
        (w, h), cx, cy = lay.size[key], lay.x[key], lay.y[key]
        (lines_, detail), colour, top = lines_of(box_), STYLES[box_.shape][2], cy - h / 2 + 10
        tip = "\n".join(text for text in (box_.label, box_.detail, box_.note) if text)
        body = _el("title", escape(tip)) + _shape_svg(box_.shape, cx, cy, w, h)
        body += _text(cx, top, lines_, colour)
        if detail:
            body += _text(cx, top + len(lines_) * LINE - 2, [detail], colour, 11)
        parts.append(_el("g", body, class_=f"node {box_.shape}", data_key=key))
    parts += [*labels, "</g>", "</svg>"]
    return "\n".join(parts) + "\n"


# --- HTML ---------------------------------------------------------------------------------


def facts(journey: ir.Journey) -> list[tuple[str, str]]:
    wf, s = journey.workflow, journey.workflow.settings
    plural = "s" if len(wf.triggers()) > 1 else ""
    rows = [(f"Trigger{plural}", "; ".join(trigger_text(t) for t in wf.triggers()))]
    rows += [("Goal", f"{wf.goal.label} ({wf.goal.key()})")] if wf.goal else []
    rows += [("Exit", f"{x.label} ({x.key()})") for x in journey.exits]
    again = f"after {s.re_entry.after.text}" if isinstance(s.re_entry, m.ReEntryAfter) else ""
    rows.append(("Re-entry", again or {"always": "any time"}.get(str(s.re_entry), "never")))
    if cap := s.frequency_cap:
        rows.append(("Frequency cap", f"{cap.max} messages per {cap.per.text}, all workflows"))
    if quiet := s.quiet_hours:
        rows.append(("Quiet hours", f"{quiet.start}–{quiet.end}; sends wait until the end"))
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
    wf, d, e = journey.workflow, diagram(journey), html.escape
    rows = "".join(f"<dt>{e(term)}</dt><dd>{e(text)}</dd>" for term, text in facts(journey))
    lead = f'<p class="lead">{e(wf.description)}</p>\n' if wf.description else ""
    return (
        f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(wf.name)} · Journeys</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{e(wf.name)}</h1>\n{lead}<dl>{rows}</dl>\n<figure>\n{svg(d, wf.name)}</figure>\n"
        f"<details>\n<summary>Mermaid source</summary>\n<pre>{e(mermaid(d))}</pre>\n"
        f"</details>\n<footer>{e(wf.id)} · drawn by <code>journeys graph</code> from "
        f"{e(journey.file)}</footer>\n</body>\n</html>\n"
    )
