"""The workflows the runtime serves, by (id, version): the published definition (else the shipped file), read
when first asked for and built once per content hash - a version published while the app runs is served at
once, without a restart. A workflow version never changes once published (`Kind.immutable`), so a version
found is kept. One that fails to build is logged and answers "unknown" for itself only: other workflows,
cities and running deals are not affected."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, MutableMapping

from app.definitions.kinds import workflow_name
from app.definitions.store import DefinitionStore
from app.platform.errors import WorkflowError
from app.state_machine.definition import WorkflowDefinition
from app.state_machine.loader import build_definition
from app.state_machine.registry import Registry

log = logging.getLogger("cunguan.definitions")
KIND = "workflow"
WorkflowKey = tuple[str, int]


def parse_name(name: str) -> WorkflowKey | None:
    workflow_id, _, version = name.rpartition("@")
    return (workflow_id, int(version)) if workflow_id and version.isdigit() else None


class WorkflowLibrary(MutableMapping[WorkflowKey, WorkflowDefinition]):
    def __init__(self, store: DefinitionStore, registry: Registry) -> None:
        self.store, self.registry = store, registry
        self._found: dict[WorkflowKey, WorkflowDefinition] = {}
        self._built: dict[str, WorkflowDefinition | None] = {}  # content hash -> definition (None: broken)

    def _build(self, name: str, content: str, sha256: str) -> WorkflowDefinition | None:
        if sha256 not in self._built:
            try:
                self._built[sha256] = build_definition(json.loads(content), self.registry, name)
            except (ValueError, WorkflowError) as error:  # JSON errors are ValueErrors
                log.error("workflow %s (%s) cannot be loaded: %s", name, sha256[:12], error)
                self._built[sha256] = None
        return self._built[sha256]

    def __getitem__(self, key: WorkflowKey) -> WorkflowDefinition:
        found = self._found.get(key)
        if found is not None:
            return found
        name = workflow_name(*key)
        entry = self.store.published(KIND, name)
        definition = self._build(name, entry.content, entry.sha256) if entry is not None else None
        if definition is None or (definition.id, definition.version) != key:
            raise KeyError(key)
        self._found[key] = definition
        return definition

    def __setitem__(self, key: WorkflowKey, value: WorkflowDefinition) -> None:
        self._found[key] = value

    def __delitem__(self, key: WorkflowKey) -> None:
        del self._found[key]

    def _keys(self) -> set[WorkflowKey]:
        names = self.store.published_hashes(KIND)
        return {key for name in names if (key := parse_name(name)) is not None} | set(self._found)

    def _loadable(self) -> list[WorkflowKey]:
        return [key for key in sorted(self._keys()) if self.get(key) is not None]

    def __iter__(self) -> Iterator[WorkflowKey]:
        return iter(self._loadable())

    def __len__(self) -> int:
        return len(self._loadable())
