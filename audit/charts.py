"""The audit's pictures, drawn as SVG on the server (no JavaScript, no CDN), in the manner of
`agents.graph`: the handoff graph with the count on each edge, handoffs per day, and two
configuration versions side by side."""

from __future__ import annotations

from collections import deque
from typing import Any

from django.utils.html import escape

from audit.analytics import EdgeFigures

NODE_W, NODE_H = 170, 44
COL_GAP, ROW_GAP, MARGIN = 120, 36, 24
BLUE, GREY, ORANGE, RED = "#417690", "#b8c4cc", "#c77800", "#ba2121"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def spec_edges(spec: dict[str, Any] | None) -> set[tuple[str, str]]:
    """The handoff edges of a compiled spec (its agents' transfer tools)."""
    edges = set()
    for slug, agent in ((spec or {}).get("agents") or {}).items():
        for tool in agent.get("tools") or []:
            if tool.get("kind") == "transfer" and tool.get("transfer_to"):
                edges.add((slug, tool["transfer_to"]))
    return edges


def edge_graph(edges: list[EdgeFigures], spec: dict[str, Any] | None) -> str:
    """The handoff graph of `spec` with each edge labelled by its count in `edges`. Edges that
    handoffs took but the spec does not have (fallbacks) are drawn dashed in orange; edges of the
    spec no handoff took, thin and grey. Agents in columns by distance from the root."""
    counts = {(e.from_agent, e.to_agent): e for e in edges}
    configured = spec_edges(spec)
    all_edges = sorted(configured | set(counts))
    agents = set((spec or {}).get("agents") or {}) | {a for pair in all_edges for a in pair}
    root = (spec or {}).get("root_agent") or (edges[0].from_agent if edges else "")
    depth: dict[str, int] = {root: 0} if root else {}
    queue = deque([root] if root else [])
    while queue:
        current = queue.popleft()
        for source, target in all_edges:
            if source == current and target not in depth:
                depth[target] = depth[current] + 1
                queue.append(target)
    last = max(depth.values(), default=0)
    columns: list[list[str]] = [[] for _ in range(last + 2)]
    for agent in sorted(agents):
        columns[depth.get(agent, last + 1)].append(agent)
    columns = [c for c in columns if c] or [[]]
    tallest = max(1, max(len(c) for c in columns))
    height = MARGIN * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP
    width = MARGIN * 2 + len(columns) * NODE_W + (len(columns) - 1) * COL_GAP
    pos: dict[str, tuple[float, float]] = {}
    for col, column in enumerate(columns):
        top = (height - (len(column) * NODE_H + (len(column) - 1) * ROW_GAP)) / 2
        for row, agent in enumerate(column):
            pos[agent] = (MARGIN + col * (NODE_W + COL_GAP), top + row * (NODE_H + ROW_GAP))
    biggest = max((e.handoffs for e in edges), default=1) or 1
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" class="audit-graph" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" role="img" aria-label="Handoffs per edge">'),
        ('<defs><marker id="audit-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
         'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="context-stroke"/></marker></defs>'),
    ]
    pairs = set(all_edges)
    for source, target in all_edges:
        (ax, ay), (bx, by) = pos[source], pos[target]
        x1, y1, x2, y2 = ax + NODE_W / 2, ay + NODE_H / 2, bx + NODE_W / 2, by + NODE_H / 2
        length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1.0)
        if (target, source) in pairs:  # both directions: side by side
            ox, oy = -(y2 - y1) / length * 8, (x2 - x1) / length * 8
            x1, y1, x2, y2 = x1 + ox, y1 + oy, x2 + ox, y2 + oy
        x1, y1 = _clip(x1, y1, x2, y2)
        x2, y2 = _clip(x2, y2, x1, y1)
        figures = counts.get((source, target))
        n = figures.handoffs if figures else 0
        colour = ORANGE if (source, target) not in configured else BLUE if n else GREY
        stroke = 1.2 + 7 * n / biggest
        dash = ' stroke-dasharray="6 4"' if (source, target) not in configured else ""
        title = f"{source} → {target}: {n} handoffs"
        if figures:
            title += (f", fallback {_percent(figures.fallback_rate)}, refused {_percent(figures.refusal_rate)}, "
                      f"loops {figures.loops}, ended right after {figures.ended_after}")
        parts.append(
            f'<g class="edge" data-from="{escape(source)}" data-to="{escape(target)}" data-count="{n}">'
            f'<title>{escape(title)}</title><line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{colour}" stroke-width="{stroke:.1f}"{dash} marker-end="url(#audit-arrow)"/>'
            f'<text x="{(x1 + x2) / 2:.1f}" y="{(y1 + y2) / 2 - 5:.1f}" text-anchor="middle" font-size="12" '
            f'font-weight="600" fill="{colour}" paint-order="stroke" stroke="#fff" stroke-width="3">{n}</text></g>')
    for agent, (x, y) in pos.items():
        is_root = agent == root
        parts.append(
            f'<g class="agent" data-slug="{escape(agent)}"><rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" '
            f'height="{NODE_H}" rx="8" fill="#fff" stroke="{"#2e7d32" if is_root else "#79aec8"}" '
            f'stroke-width="{3 if is_root else 1.5}"/><text x="{x + NODE_W / 2:.1f}" y="{y + NODE_H / 2 + 4:.1f}" '
            f'text-anchor="middle" font-size="12" fill="#333">{escape(agent[:24])}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _clip(ax: float, ay: float, bx: float, by: float) -> tuple[float, float]:
    dx, dy = bx - ax, by - ay
    if dx == 0 and dy == 0:
        return ax, ay
    t = min((NODE_W / 2) / abs(dx) if dx else float("inf"), (NODE_H / 2) / abs(dy) if dy else float("inf"))
    return ax + dx * t, ay + dy * t


def daily_bars(days: list[dict[str, Any]]) -> str:
    """Handoffs per day: a bar each, its fallback part in orange and refused part in red."""
    if not days:
        return ""
    width, height, left, bottom = 720, 180, 40, 28
    plot_w, plot_h = width - left - 10, height - bottom - 14
    most = max(d["handoffs"] for d in days) or 1
    bar = plot_w / len(days)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="audit-days" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" role="img" aria-label="Handoffs per day">'),
             f'<text x="4" y="16" font-size="11" fill="#666">{most}</text>',
             f'<line x1="{left}" y1="{14 + plot_h}" x2="{width - 10}" y2="{14 + plot_h}" stroke="#ccc"/>']
    for i, day in enumerate(days):
        x = left + i * bar
        for value, colour, cls in ((day["handoffs"], BLUE, "all"), (day["fallback"], ORANGE, "fallback"),
                                   (day["refused"], RED, "refused")):
            h = plot_h * value / most
            parts.append(f'<rect class="{cls}" x="{x + 1:.1f}" y="{14 + plot_h - h:.1f}" '
                         f'width="{max(bar - 2, 1):.1f}" height="{h:.1f}" fill="{colour}"/>')
        parts.append(f'<title>{day["day"]}: {day["handoffs"]} handoffs, {day["fallback"]} fallback, '
                     f'{day["refused"]} refused</title>')
        if len(days) <= 14 or i % max(1, len(days) // 7) == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 8}" font-size="10" text-anchor="middle" '
                         f'fill="#666">{day["day"].strftime("%m-%d")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def comparison_bars(rows: list[tuple[str, float | None, float | None]], labels: tuple[str, str]) -> str:
    """Rates of two versions side by side: one pair of bars per measure (0–100%)."""
    width, row_h, left = 560, 44, 170
    height = 30 + row_h * len(rows)
    plot_w = width - left - 70
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="audit-compare" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" role="img" aria-label="Rates of two versions">'),
             (f'<rect x="{left}" y="6" width="10" height="10" fill="{BLUE}"/>'
              f'<text x="{left + 14}" y="15" font-size="11">{escape(labels[0])}</text>'
              f'<rect x="{left + 160}" y="6" width="10" height="10" fill="{ORANGE}"/>'
              f'<text x="{left + 174}" y="15" font-size="11">{escape(labels[1])}</text>')]
    for i, (label, a, b) in enumerate(rows):
        y = 26 + i * row_h
        parts.append(f'<text x="4" y="{y + 20}" font-size="12" fill="#333">{escape(label)}</text>')
        for j, (value, colour) in enumerate(((a, BLUE), (b, ORANGE))):
            w = plot_w * (value or 0)
            parts.append(f'<rect x="{left}" y="{y + j * 16}" width="{w:.1f}" height="14" fill="{colour}"/>'
                         f'<text x="{left + w + 4:.1f}" y="{y + j * 16 + 11}" font-size="11">{_percent(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)
