"""Rules of reviewed, versioned publishing of city configs: statuses, who may do what, content hashes.

draft → submitted → approved → published → retired; submitted → rejected. A rollback publishes a new
version whose content is an earlier published one (`rollback_of`), so the history only grows."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.domain.cities import canonical_json
from app.platform.errors import ValidationError

AUTHOR_ROLES = ("ops",)
REVIEWER_ROLES = ("reviewer",)
SYSTEM_AUTHOR = "system"  # the shipped files, imported as version 1
OPEN_STATUSES = ("draft", "submitted", "approved")  # at most one version per city is in one of these
STATUS_LABELS = {
    "draft": "草稿",
    "submitted": "待审核",
    "approved": "已批准",
    "rejected": "已驳回",
    "published": "已发布",
    "retired": "已停用",
}
_STEPS = {
    "submit": (("draft",), "submitted"),
    "approve": (("submitted",), "approved"),
    "reject": (("submitted",), "rejected"),
    "publish": (("approved",), "published"),
}
STEP_LABELS = {"submit": "提交审核", "approve": "批准", "reject": "驳回", "publish": "发布"}


def next_status(step: str, current: str) -> str:
    allowed, target = _STEPS[step]
    if current not in allowed:
        raise ValidationError(
            f"版本状态为「{STATUS_LABELS[current]}」，不能{STEP_LABELS[step]}",
            code="CONFIG_STATUS",
            details={"step": step, "status": current},
        )
    return target


def check_role(username: str, role: str | None, allowed: tuple[str, ...], what: str) -> None:
    if role not in allowed:
        raise ValidationError(
            f"用户 {username} 无权{what}", code="ROLE_NOT_ALLOWED", details={"user": username, "role": role}
        )


def check_not_self_review(author: str, reviewer: str) -> None:
    if author == reviewer:
        raise ValidationError("不能审核自己提交的版本", code="SELF_REVIEW", details={"user": reviewer})


def parse_content(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValidationError("配置不是合法的 JSON", code="CONFIG_NOT_JSON", details=[str(error)]) from error
    if not isinstance(data, dict):
        raise ValidationError("城市配置须为 JSON 对象", code="CONFIG_NOT_JSON")
    return data


def content_sha256(raw: str) -> str:
    """sha256 of the canonical JSON: formatting and key order do not change a version's identity."""
    return hashlib.sha256(canonical_json(parse_content(raw))).hexdigest()
