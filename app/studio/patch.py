"""The document to store for an edited config: a merge patch (RFC 7396) over its parent that yields the edited
resolved values, in the shape of the document it replaces — keys it had stay (even when equal to the parent's),
keys equal to the parent's are not added, a removed inherited key becomes null."""

from __future__ import annotations

from typing import Any


def patch_over(parent: Any, target: Any, original: Any) -> Any:
    """P with merge_patch(parent, P) == target; `original` (the stored document) decides which keys P repeats."""
    if not isinstance(target, dict):
        return target
    base = parent if isinstance(parent, dict) else {}
    shape = original if isinstance(original, dict) else {}
    out: dict[str, Any] = {}
    keys = [*shape, *(k for k in target if k not in shape), *(k for k in base if k not in shape and k not in target)]
    for key in keys:
        if key in target:
            inherited = key in base and key not in shape and base[key] == target[key]
            if not inherited:
                out[key] = patch_over(base.get(key), target[key], shape.get(key)) if key in base else target[key]
        elif key in base or (key in shape and shape[key] is None):
            out[key] = None
    return out
