"""The handoff graph of a scenario drawn as SVG on the server (no JavaScript, no CDN).

Agents are boxes placed in columns by how many handoffs they are from the root; arrows are the
handoff edges. The root, supervisor and fallback agents are marked. The supervisor is not reached
by handoffs: dashed lines join it to the agents that can ask it (ask_supervisor tools).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from django.utils.html import escape

from agents.models import Agent, Scenario

NODE_W, NODE_H = 190, 54
COL_GAP, ROW_GAP = 90, 34
MARGIN = 24
BEND = 70  # room on the right for handoffs that skip over a box in the same column


@dataclass
class Node:
    agent: Agent
    x: float
    y: float

    @property
    def cx(self) -> float:
        return self.x + NODE_W / 2

    @property
    def cy(self) -> float:
        return self.y + NODE_H / 2


def _clip(ax: float, ay: float, bx: float, by: float) -> tuple[float, float]:
    """Where the segment from a box centre (ax, ay) towards (bx, by) leaves the box."""
    dx, dy = bx - ax, by - ay
    if dx == 0 and dy == 0:
        return ax, ay
    tx = (NODE_W / 2) / abs(dx) if dx else float("inf")
    ty = (NODE_H / 2) / abs(dy) if dy else float("inf")
    t = min(tx, ty)
    return ax + dx * t, ay + dy * t


def _columns(scenario: Scenario, agents: list[Agent], edges: list[tuple[Agent, Agent]]) -> list[list[Agent]]:
    depth: dict[int, int] = {scenario.root_agent.pk: 0}
    queue = deque([scenario.root_agent.pk])
    while queue:
        current = queue.popleft()
        for source, target in edges:
            if source.pk == current and target.pk not in depth:
                depth[target.pk] = depth[current] + 1
                queue.append(target.pk)
    last = max(depth.values(), default=0)
    columns: list[list[Agent]] = [[] for _ in range(last + 2)]
    for agent in agents:
        if agent.pk in depth:
            columns[depth[agent.pk]].append(agent)
        else:
            columns[last + 1].append(agent)  # supervisor, fallback reached by recovery, strays
    return [c for c in columns if c]


def render_handoff_graph(scenario: Scenario) -> str:
    """SVG markup of the scenario's handoff graph (safe to insert into a page as is)."""
    edge_rows = list(scenario.edges.select_related("from_agent", "to_agent"))
    edges = [(e.from_agent, e.to_agent) for e in edge_rows]
    agents = {a.pk: a for a in scenario.member_agents()}
    for source, target in edges:
        agents.setdefault(source.pk, source)
        agents.setdefault(target.pk, target)
    columns = _columns(scenario, sorted(agents.values(), key=lambda a: a.slug), edges)
    tallest = max(len(c) for c in columns)
    height = MARGIN * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP
    width = MARGIN * 2 + len(columns) * NODE_W + (len(columns) - 1) * COL_GAP + BEND
    nodes: dict[int, Node] = {}
    for col, column in enumerate(columns):
        column_height = len(column) * NODE_H + (len(column) - 1) * ROW_GAP
        top = (height - column_height) / 2
        for row, agent in enumerate(column):
            nodes[agent.pk] = Node(agent, MARGIN + col * (NODE_W + COL_GAP), top + row * (NODE_H + ROW_GAP))

    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" class="handoff-graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Handoff graph of {escape(scenario.name)}">'),
        ("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" "
        "markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#417690\"/>"
        "</marker></defs>"),
    ]
    pairs = {(s.pk, t.pk) for s, t in edges}
    for edge in edge_rows:
        a, b = nodes[edge.from_agent.pk], nodes[edge.to_agent.pk]
        title = escape(f"{edge.from_agent.slug} → {edge.to_agent.slug}: {edge.when}")
        if a.x == b.x and abs(a.y - b.y) > NODE_H + ROW_GAP:
            # Same column with boxes in between: bend out to the right instead of crossing them.
            right, bulge = a.x + NODE_W, BEND * (0.6 + 0.4 * abs(a.y - b.y) / (NODE_H + ROW_GAP) / 3)
            parts.append(
                f'<path class="handoff" d="M {right:.1f} {a.cy:.1f} Q {right + bulge:.1f} {(a.cy + b.cy) / 2:.1f} '
                f'{right:.1f} {b.cy:.1f}" fill="none" stroke="#417690" stroke-width="1.6" marker-end="url(#arrow)">'
                f"<title>{title}</title></path>"
            )
            continue
        ax, ay, bx, by = a.cx, a.cy, b.cx, b.cy
        if (edge.to_agent.pk, edge.from_agent.pk) in pairs:  # both directions: draw side by side
            length = max(((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5, 1.0)
            ox, oy = -(by - ay) / length * 7, (bx - ax) / length * 7
            ax, ay, bx, by = ax + ox, ay + oy, bx + ox, by + oy
        x1, y1 = _clip(ax, ay, bx, by)
        x2, y2 = _clip(bx, by, ax, ay)
        parts.append(
            f'<line class="handoff" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#417690" '
            f'stroke-width="1.6" marker-end="url(#arrow)"><title>{title}</title></line>'
        )
    supervisor = scenario.supervisor_agent
    if supervisor is not None and supervisor.pk in nodes:
        sup = nodes[supervisor.pk]
        for node in nodes.values():
            if node.agent.pk != supervisor.pk and node.agent.tools.filter(builtin="ask_supervisor").exists():
                x1, y1 = _clip(node.cx, node.cy, sup.cx, sup.cy)
                x2, y2 = _clip(sup.cx, sup.cy, node.cx, node.cy)
                parts.append(
                    f'<line class="asks-supervisor" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                    'stroke="#8a6d3b" stroke-width="1.4" stroke-dasharray="5 4"><title>asks the supervisor</title></line>'
                )
    for node in nodes.values():
        agent = node.agent
        roles = []
        if agent.pk == scenario.root_agent_id:
            roles.append("ROOT")
        if agent.pk == scenario.supervisor_agent_id:
            roles.append("SUPERVISOR")
        if agent.pk == scenario.fallback_agent_id:
            roles.append("FALLBACK")
        stroke = "#2e7d32" if "ROOT" in roles else "#8a6d3b" if "SUPERVISOR" in roles else "#79aec8"
        dash = ' stroke-dasharray="6 3"' if "SUPERVISOR" in roles else ""
        fill = "#fff7e6" if "FALLBACK" in roles else "#ffffff"
        width_px = 3 if roles else 1.5
        parts.append(
            f'<g class="agent" data-slug="{escape(agent.slug)}"><rect x="{node.x:.1f}" y="{node.y:.1f}" '
            f'width="{NODE_W}" height="{NODE_H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{width_px}"{dash}/>'
            f'<text x="{node.cx:.1f}" y="{node.y + 22:.1f}" text-anchor="middle" font-size="13" '
            f'font-weight="600" fill="#333">{escape(agent.name[:26])}</text>'
            f'<text x="{node.cx:.1f}" y="{node.y + 40:.1f}" text-anchor="middle" font-size="11" fill="#666">'
            f'{escape(agent.slug[:30])}{" · " + " · ".join(roles) if roles else ""}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
