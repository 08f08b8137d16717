"""A workflow as a Graphviz diagram: states (final ones double-circled), transitions labelled with the
event, the guard and the actions; timer events dashed."""

from __future__ import annotations

import shutil
import subprocess

from app.platform.errors import WorkflowError
from app.state_machine.definition import WorkflowDefinition


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(definition: WorkflowDefinition) -> str:
    timer_events = {(name, timer.event) for name, state in definition.states.items() for timer in state.timers}
    lines = [
        f"digraph {_quote(definition.id)} {{",
        f"  label={_quote(f'{definition.name}（{definition.id} v{definition.version}）')};",
        '  labelloc="t"; rankdir="LR"; node [fontname="Noto Sans CJK SC"]; edge [fontname="Noto Sans CJK SC"];',
        '  "__start" [shape=point];',
        f'  "__start" -> {_quote(definition.initial)};',
    ]
    for name, state in definition.states.items():
        shape = "doublecircle" if state.final else "box"
        lines.append(f"  {_quote(name)} [label={_quote(state.label)}, shape={shape}];")
    for transition in definition.transitions:
        label = definition.events.get(transition.event, transition.event)
        if transition.guard:
            label += f"\n[{transition.guard}]"
        if transition.actions:
            label += "\n/ " + ", ".join(transition.actions)
        style = ", style=dashed" if (transition.source, transition.event) in timer_events else ""
        lines.append(f"  {_quote(transition.source)} -> {_quote(transition.target)} [label={_quote(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(definition: WorkflowDefinition) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise WorkflowError(
            "未找到 Graphviz 的 dot 命令，请安装 Debian 软件包 graphviz（apt-get install graphviz）",
            code="GRAPHVIZ_MISSING",
        )
    rendered = subprocess.run([dot, "-Tsvg"], input=to_dot(definition).encode(), capture_output=True, check=False)
    if rendered.returncode != 0:
        raise WorkflowError(
            "Graphviz 生成图失败", code="GRAPHVIZ_FAILED", details=rendered.stderr.decode(errors="replace")
        )
    return rendered.stdout
