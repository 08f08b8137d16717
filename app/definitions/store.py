"""Reading published definitions: the published version in the database, the repository file (the seed) while
a name has none; any version by its content hash (what a deal pinned), kept per process since a hash never
changes its content. Reads run in short sessions of their own, like the city source's. Which hash serves each name
is read once per FRESH_S (every deal, callback and page asks, often several times): a version published by this
process is served at once (`forget`), one published by another process within FRESH_S."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cities.sources import reader_engine
from app.db.definition_models import DefinitionVersion
from app.db.session import Database
from app.definitions.kinds import Kind, content_sha256

FRESH_S = 1.0


@dataclass(frozen=True)
class Entry:
    content: str
    sha256: str


class DefinitionStore:
    def __init__(self, db: Database, kinds: Mapping[str, Kind]) -> None:
        self.engine = reader_engine(db)
        self.kinds = kinds
        self._by_sha: dict[tuple[str, str], str] = {}
        self._seed_hashes: dict[str, dict[str, str]] = {}  # the seed is read once per process
        self._served: dict[str, tuple[float, dict[str, str]]] = {}  # kind -> (read at, name -> published hash)

    def _seed(self, kind: str, name: str) -> Entry | None:
        content = self.kinds[kind].seed().get(name)
        return Entry(content, content_sha256(content)) if content is not None else None

    def forget(self) -> None:
        """Read what is published again at the next ask (this process published or imported a version)."""
        self._served.clear()

    def _published_rows(self, kind: str) -> dict[str, str]:
        """name -> hash of the published version of every name of `kind` in the database (one query per
        FRESH_S)."""
        read = self._served.get(kind)
        if read is not None and time.monotonic() - read[0] < FRESH_S:
            return read[1]
        with Session(self.engine) as session:
            rows = session.execute(
                select(DefinitionVersion.name, DefinitionVersion.content_sha256).where(
                    DefinitionVersion.kind == kind, DefinitionVersion.status == "published"
                )
            )
            found = {name: sha for name, sha in rows}
        self._served[kind] = (time.monotonic(), found)
        return found

    def published(self, kind: str, name: str) -> Entry | None:
        """What serves `name` now: its published version, else its repository file."""
        sha256 = self._published_rows(kind).get(name)
        if sha256 is None:
            return self._seed(kind, name)
        content = self.content(kind, name, sha256)
        return Entry(content, sha256) if content is not None else self._seed(kind, name)

    def published_hashes(self, kind: str) -> dict[str, str]:
        """name -> content hash of every name of `kind` that serves now."""
        if kind not in self._seed_hashes:
            seed = self.kinds[kind].seed()
            self._seed_hashes[kind] = {name: content_sha256(content) for name, content in seed.items()}
        return {**self._seed_hashes[kind], **self._published_rows(kind)}

    def content(self, kind: str, name: str, sha256: str) -> str | None:
        """The content of `name` whose hash is `sha256`, whatever its status now (a pinned version)."""
        known = self._by_sha.get((kind, sha256))
        if known is not None:
            return known
        seed = self._seed(kind, name)
        if seed is not None and seed.sha256 == sha256:
            content: str | None = seed.content
        else:
            with Session(self.engine) as session:
                content = session.scalar(
                    select(DefinitionVersion.content)
                    .where(DefinitionVersion.kind == kind, DefinitionVersion.content_sha256 == sha256)
                    .limit(1)
                )
        if content is not None:
            self._by_sha[(kind, sha256)] = content
        return content


class DraftStore(DefinitionStore):
    """A store with one draft in place of its published version (a draft's simulation)."""

    def __init__(self, base: DefinitionStore, kind: str, name: str, content: str) -> None:
        self.base, self.draft_kind, self.draft_name = base, kind, name
        self.draft = Entry(content, content_sha256(content))
        self.kinds = base.kinds

    def forget(self) -> None:
        self.base.forget()

    def published(self, kind: str, name: str) -> Entry | None:
        if (kind, name) == (self.draft_kind, self.draft_name):
            return self.draft
        return self.base.published(kind, name)

    def published_hashes(self, kind: str) -> dict[str, str]:
        found = self.base.published_hashes(kind)
        if kind == self.draft_kind:
            found[self.draft_name] = self.draft.sha256
        return found

    def content(self, kind: str, name: str, sha256: str) -> str | None:
        if (kind, sha256) == (self.draft_kind, self.draft.sha256):
            return self.draft.content
        return self.base.content(kind, name, sha256)
