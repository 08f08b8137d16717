"""The form model the page renders: sections of fields and row groups, values as text in display units.

A field's `key` is the JSON pointer of its value in the resolved config (also its input's name, without the
leading slash), so a problem found later by the config checks lands on the field whose key prefixes its pointer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass
class Field:
    key: str  # products/resale_escrow/custody/min_fen
    label: str
    widget: str  # text | textarea | number | yuan | rate | duration | select | checks | checkbox | readonly
    value: str | list[str] | bool = ""
    help: str = ""
    options: tuple[Option, ...] = ()
    unit: str = ""  # rate: % or ‰; duration: days, working_days, months…
    cut_off: bool = False  # duration in working days: counted after the bank's cut-off
    placeholder: str = ""  # what applies when left empty (the workflow default, no limit…)
    error: str = ""

    @property
    def dom_id(self) -> str:
        return "f-" + self.key.replace("/", "-").replace("@", "-")


@dataclass
class RowGroup:
    key: str  # products/resale_escrow/fees
    label: str
    help: str
    columns: list[Field]  # header: label, widget, options, help
    rows: list[list[Field]] = field(default_factory=list)  # existing rows, then blank ones to add
    error: str = ""


@dataclass
class Section:
    key: str  # "" for the city itself, else products/<code>
    title: str
    fields: list[Field] = field(default_factory=list)
    groups: list[RowGroup] = field(default_factory=list)
    enabled: bool = True
    switchable: bool = False
    note: str = ""
    error: str = ""

    @property
    def has_error(self) -> bool:
        return bool(self.error or any(g.error for g in self.groups) or any(f.error for f in self.all_fields()))

    def all_fields(self) -> list[Field]:
        cells = [cell for group in self.groups for row in group.rows for cell in row]
        return [*self.fields, *cells]


@dataclass
class StudioForm:
    sections: list[Section]
    errors: list[str] = field(default_factory=list)  # problems no field owns, in Chinese

    @property
    def error_count(self) -> int:
        own = sum(bool(f.error) for s in self.sections for f in s.all_fields())
        groups = sum(bool(g.error) for s in self.sections for g in s.groups)
        return own + groups + sum(bool(s.error) for s in self.sections) + len(self.errors)

    def place(self, pointer: str, message: str) -> None:
        """Put `message` on the field, row group or section whose key is the longest prefix of `pointer`."""
        path = pointer.strip("/")
        best: Field | RowGroup | Section | None = None
        best_length = -1
        for section in self.sections:
            holders: list[Field | RowGroup | Section] = [section, *section.groups, *section.all_fields()]
            for holder in holders:
                key = holder.key
                if key and (path == key or path.startswith(key + "/")) and len(key) > best_length:
                    best, best_length = holder, len(key)
        if best is None:
            self.errors.append(message)
        elif not best.error:
            best.error = message
        elif message not in best.error:
            best.error += "；" + message
