"""What the incremental updates after a signed revision changed, other than adding signatures.

The signed revision is compared with the whole file object by object (the way pyHanko's difference analysis
whitelists changes). A later signature may only add: a signature field and its widget (one that draws nothing
over the page: no appearance, an empty rectangle, or hidden), or fill an empty signature field of the signed
revision (its value, and its appearance within the rectangle that revision fixed); the signature dictionary, that
field in the form's /Fields (and /SigFlags, and the /AcroForm itself when the file had none), the widget in its
page's /Annots, and validation data (/DSS in the catalog). Everything else is a modification: new or changed
annotations and widgets, other /AcroForm entries, new or changed content streams, changes to pages or the page
tree, and any other object of the signed revision rewritten or deleted. New objects that nothing old points to
show nothing.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, PdfObject

_CATALOG_FREE = {"/AcroForm", "/DSS"}
_FORM_FREE = {"/Fields", "/SigFlags"}
_PAGE_FREE = {"/Annots"}
_DSS_KEYS = {"/Type", "/Certs", "/OCSPs", "/CRLs", "/VRI"}
_HIDDEN = 2  # annotation flag: not displayed nor printed
_ACTIONS = {"/A", "/AA"}

Location = tuple[Any, ...] | None


def _serialise(value: Any) -> bytes:
    stream = BytesIO()
    value.write_to_stream(stream)
    return stream.getvalue()


def _without(value: DictionaryObject, keys: set[str]) -> bytes:
    return _serialise(DictionaryObject({k: v for k, v in value.items() if k not in keys}))


def _raw(dictionary: DictionaryObject, key: str) -> Any:
    """The entry as written (an IndirectObject stays one), None when absent."""
    return dictionary.raw_get(key) if key in dictionary else None


def _resolve(value: PdfObject | None) -> Any:
    return value.get_object() if value is not None else None


def _key(reference: Any) -> tuple[int, int] | None:
    return (reference.idnum, reference.generation) if isinstance(reference, IndirectObject) else None


def _references(array: Any) -> list[tuple[int, int] | None]:
    """The references an array holds (a direct entry counts as None, i.e. matches nothing)."""
    array = _resolve(array)
    return [_key(item) for item in array] if isinstance(array, ArrayObject) else []


def _locations(reader: PdfReader) -> dict[int, Location]:
    """Where each object number is defined: (generation, offset), or ("stream", number, index) in an object stream."""
    found: dict[int, Location] = {}
    for generation, table in reader.xref.items():
        for number, offset in table.items():
            free = reader.xref_free_entry.get(generation, {}).get(number, False)
            found[number] = None if free else (generation, offset)
    for number, (stream_number, index) in reader.xref_objStm.items():
        found[number] = ("stream", stream_number, index)
    return found


def _rewritten(old_reader: PdfReader, new_reader: PdfReader) -> tuple[list[int], list[int]]:
    """(object numbers of the signed revision defined elsewhere now, those no longer defined)."""
    old, new = _locations(old_reader), _locations(new_reader)
    moved_streams = {number for number, place in old.items() if place is not None and new.get(number) != place}
    rewritten, deleted = [], []
    for number, place in old.items():
        if place is None:
            continue
        current = new.get(number)
        if current is None:
            deleted.append(number)
        elif current != place or (place[0] == "stream" and place[1] in moved_streams):
            rewritten.append(number)
    return sorted(rewritten), sorted(deleted)


def _is_signature_field(node: Any) -> bool:
    if not isinstance(node, DictionaryObject):
        return False
    parent = _resolve(node.get("/Parent"))
    return node.get("/FT") == "/Sig" or (isinstance(parent, DictionaryObject) and parent.get("/FT") == "/Sig")


def _draws_nothing(widget: DictionaryObject) -> bool:
    """No appearance, an empty rectangle, or hidden: the widget adds nothing to the page."""
    if "/AP" not in widget or int(widget.get("/F", 0)) & _HIDDEN:
        return True
    try:
        x1, y1, x2, y2 = (float(value) for value in _resolve(widget.get("/Rect")))
    except (TypeError, ValueError):
        return False
    return x1 == x2 or y1 == y2


def _signature_widget_problem(node: Any, page_number: int) -> str | None:
    """Why a widget added to page `page_number` (1-based) is more than an invisible signature widget, or None."""
    if not (isinstance(node, DictionaryObject) and node.get("/Subtype") == "/Widget" and _is_signature_field(node)):
        return f"签署后第 {page_number} 页新增了注释/表单控件"
    if _ACTIONS & set(node):
        return f"签署后第 {page_number} 页新增的签名控件带有动作"
    if not _draws_nothing(node):
        return f"签署后第 {page_number} 页新增的签名控件带有覆盖页面的外观"
    return None


def _appended(old: Any, new: Any) -> tuple[bool, list[Any]]:
    """(the old references are kept, in order, at the front; the new items after them, resolved)."""
    before, after = _references(old), _references(new)
    if after[: len(before)] != before or None in before:
        return False, []
    array = _resolve(new)
    added = list(array)[len(before) :] if isinstance(array, ArrayObject) else []
    return True, [_resolve(item) for item in added]


class _Comparison:
    """The signed revision (`old`) against the whole file (`new`); `problems` collects what changed."""

    def __init__(self, old: PdfReader, new: PdfReader) -> None:
        self.old, self.new = old, new
        self.problems: list[str] = []
        self.checked: set[int] = set()  # old objects whose rewriting the checks below judge

    def _check_root(self) -> tuple[DictionaryObject, DictionaryObject] | None:
        old_root, new_root = self.old.trailer.raw_get("/Root"), self.new.trailer.raw_get("/Root")
        if _key(old_root) is None or _key(old_root) != _key(new_root):
            self.problems.append("签署后文档目录被替换")
            return None
        self.checked.add(old_root.idnum)
        old_catalog, new_catalog = old_root.get_object(), new_root.get_object()
        if _without(old_catalog, _CATALOG_FREE) != _without(new_catalog, _CATALOG_FREE):
            self.problems.append("签署后文档目录被修改")
        return old_catalog, new_catalog

    def _check_dss(self, old_catalog: DictionaryObject, new_catalog: DictionaryObject) -> None:
        dss = _resolve(new_catalog.get("/DSS"))
        if dss is None or dss == _resolve(old_catalog.get("/DSS")):
            return
        if not isinstance(dss, DictionaryObject) or not set(dss) <= _DSS_KEYS:
            self.problems.append("签署后 /DSS 含有验证数据以外的内容")

    def _check_form(self, old_catalog: DictionaryObject, new_catalog: DictionaryObject) -> None:
        old_raw, new_raw = _raw(old_catalog, "/AcroForm"), _raw(new_catalog, "/AcroForm")
        if isinstance(old_raw, IndirectObject) and _key(old_raw) != _key(new_raw):
            self.problems.append("签署后 /AcroForm 被替换")
            return
        old_form = _resolve(old_raw) if old_raw is not None else DictionaryObject()
        new_form = _resolve(new_raw) if new_raw is not None else DictionaryObject()
        for raw in (old_raw, _raw(old_form, "/Fields")):
            if isinstance(raw, IndirectObject):
                self.checked.add(raw.idnum)
        if not isinstance(new_form, DictionaryObject):
            self.problems.append("签署后 /AcroForm 被修改")
            return
        if _without(old_form, _FORM_FREE) != _without(new_form, _FORM_FREE):
            self.problems.append("签署后 /AcroForm 被修改")
        kept, added = _appended(old_form.get("/Fields"), new_form.get("/Fields"))
        if not kept:
            self.problems.append("签署后 /AcroForm 的字段被删除或替换")
        for field in added:
            if not (_is_signature_field(field) and "/Kids" not in field):
                self.problems.append("签署后 /AcroForm 新增了签名以外的字段")

    def _check_pages(self) -> None:
        old_pages, new_pages = self.old.pages, self.new.pages
        old_keys = [_key(page.indirect_reference) for page in old_pages]
        new_keys = [_key(page.indirect_reference) for page in new_pages]
        if sorted(old_keys) == sorted(new_keys) and old_keys != new_keys:
            moved = [
                number for number, (old, new) in enumerate(zip(old_keys, new_keys, strict=True), start=1) if old != new
            ]
            self.problems.append(f"签署后页面顺序被调换（第 {'、'.join(map(str, moved))} 页不再是签署时的页面）")
            return
        if old_keys != new_keys:
            self.problems.append(f"签署后页面被增删或替换（{len(old_pages)} 页变为 {len(new_pages)} 页）")
            return
        for number, (old_page, new_page) in enumerate(zip(old_pages, new_pages, strict=True), start=1):
            for raw in (old_page.indirect_reference, _raw(old_page, "/Annots")):
                if isinstance(raw, IndirectObject):
                    self.checked.add(raw.idnum)
            if _without(old_page, _PAGE_FREE) != _without(new_page, _PAGE_FREE):
                self.problems.append(f"签署后第 {number} 页被修改（内容、资源或属性）")
            kept, added = _appended(old_page.get("/Annots"), new_page.get("/Annots"))
            if not kept:
                self.problems.append(f"签署后第 {number} 页的注释被删除或替换")
            self.problems.extend(
                problem for node in added if (problem := _signature_widget_problem(node, number)) is not None
            )

    def _content_pages(self) -> dict[int, int]:
        """Object number of each content stream of the signed revision -> its page (1-based)."""
        found: dict[int, int] = {}
        for number, page in enumerate(self.old.pages, start=1):
            contents = _raw(page, "/Contents")
            items = list(_resolve(contents)) if isinstance(_resolve(contents), ArrayObject) else [contents]
            if isinstance(contents, IndirectObject):
                items.append(contents)
            found.update((item.idnum, number) for item in items if isinstance(item, IndirectObject))
        return found

    def _check_other_objects(self) -> None:
        rewritten, deleted = _rewritten(self.old, self.new)
        content_pages = self._content_pages()
        for number in rewritten:
            if number in self.checked or self._is_container(number) or self._fills_empty_signature(number):
                continue
            if number in content_pages:
                self.problems.append(f"签署后第 {content_pages[number]} 页的内容流被修改")
            elif _serialise(self.old.get_object(number)) != _serialise(self.new.get_object(number)):
                self.problems.append(f"签署后对象 {number} 被修改")
        self.problems.extend(f"签署后对象 {number} 被删除" for number in deleted)

    def _is_container(self, number: int) -> bool:
        """A cross-reference or object stream of the signed revision: its members are judged one by one."""
        value = self.old.get_object(number)
        return isinstance(value, DictionaryObject) and value.get("/Type") in ("/XRef", "/ObjStm")

    def _fills_empty_signature(self, number: int) -> bool:
        """An empty signature field of the signed revision that only gained its value, and its appearance when it
        had none (a field reserved for a party: its rectangle was fixed in the signed revision)."""
        old, new = self.old.get_object(number), self.new.get_object(number)
        gained = {"/V"} if "/AP" in old else {"/V", "/AP"}
        return (
            _is_signature_field(old)
            and "/V" not in old
            and isinstance(new, DictionaryObject)
            and _without(old, gained) == _without(new, gained)
            and _resolve(new.get("/V")) is not None
            and _resolve(new.get("/V")).get("/Type") == "/Sig"
        )

    def run(self) -> list[str]:
        catalogs = self._check_root()
        if catalogs is not None:
            self._check_form(*catalogs)
            self._check_dss(*catalogs)
        self._check_pages()
        self._check_other_objects()
        return list(dict.fromkeys(self.problems))


def changes_after_revision(revision: bytes, whole: bytes) -> list[str]:
    """Chinese descriptions of what the updates after `revision` (a prefix of `whole`) changed; [] if only signed."""
    if not whole.startswith(revision):
        return ["签名版本不是文件的前缀"]
    old_reader = PdfReader(BytesIO(revision), strict=False)
    new_reader = PdfReader(BytesIO(whole), strict=False)
    return _Comparison(old_reader, new_reader).run()
