"""The business calendars the runtime computes with: the published version of each year (else its repository
file), read at each use - one query for the years' hashes - and parsed once per hash; a calendar published
while the app runs counts from the next computation. A year whose document does not parse is logged and left
out (a deadline in it raises CalendarMissing, as for a year with no calendar): other years are not affected."""

from __future__ import annotations

import logging

from app.calendars.loader import CalendarInvalid, parse_year
from app.definitions.store import DefinitionStore
from app.domain.business_calendar import BusinessCalendar, CalendarYear

log = logging.getLogger("cunguan.definitions")
KIND = "calendar"


class PublishedCalendars:
    def __init__(self, store: DefinitionStore) -> None:
        self.store = store
        self._years: dict[str, CalendarYear | None] = {}  # content hash -> parsed year (None: does not parse)

    def _year(self, name: str, sha256: str) -> CalendarYear | None:
        if sha256 not in self._years:
            content = self.store.content(KIND, name, sha256)
            try:
                self._years[sha256] = parse_year((content or "").encode("utf-8"), f"{name}.json")
            except CalendarInvalid as invalid:
                log.error("calendar %s (%s) cannot be loaded: %s", name, sha256[:12], invalid.message)
                self._years[sha256] = None
        return self._years[sha256]

    def current(self) -> BusinessCalendar:
        years = [self._year(name, sha256) for name, sha256 in sorted(self.store.published_hashes(KIND).items())]
        return BusinessCalendar({year.year: year for year in years if year is not None})
