"""Warnings on a city's config page: what is valid but probably not what the business meant (a published city
agents cannot see, a `status` key that no longer decides anything, a version waiting for its next step)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CityState:
    """What the lint looks at: the city's go-live state, its published version and the version under work."""

    stem: str
    name: str
    published: bool  # a version is published (or the shipped file serves)
    live: bool
    open_status: str | None  # draft, submitted or approved: the version under work
    open_version: int | None
    open_content: Mapping[str, Any] | None  # the version under work's own JSON (not resolved)
    simulated: bool  # the version under work has a passing, complete simulation


def lint(state: CityState) -> list[str]:
    if not state.stem.isdigit():
        return []  # the virtual city is a template, never live
    warnings = []
    if state.published and not state.live:
        warnings.append(f"已发布但未上线：代理人看不到{state.name}，审核人在本页「上线」后才能新建存管")
    if not state.published and state.open_status is not None:
        warnings.append(f"{state.name}尚未发布：审核通过并发布后，还须「上线」代理人才能看到")
    content = state.open_content or {}
    if "status" in content:
        warnings.append(
            f"第 {state.open_version} 版配置中的 status（{content['status']}）不起作用："
            "是否上线只由审核流程的「上线」「下线」决定，可删除此项"
        )
    if state.open_status == "draft" and not state.simulated:
        warnings.append(f"第 {state.open_version} 版尚未通过全部业务的仿真：仿真全部业务并通过后才能提交审核")
    if state.open_status == "approved":
        warnings.append(f"第 {state.open_version} 版已批准但未发布：发布后新建的存管才按此版本办理")
    return warnings
