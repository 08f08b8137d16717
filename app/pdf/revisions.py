"""What the incremental updates after a signed revision changed, other than adding signatures.

A later signature (the bank's, a party's) legitimately rewrites a few objects of the signed revision: the
catalog gains /AcroForm, the form gains a field, the last page gains a widget annotation. Anything else an
update rewrites - a content stream, the page tree, a font, a page's other entries - changes what the signer
saw, and is reported. New objects that nothing old points to cannot change what is shown; the ones the old
objects are made to point to must be signature fields or widgets.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, PdfObject, StreamObject

# entries a signature may add or change, by the kind of object that carries them
_CATALOG_FREE = {"/AcroForm", "/DSS", "/Perms"}
_FORM_FREE = {"/Fields", "/SigFlags", "/DR", "/DA"}
_PAGE_FREE = {"/Annots"}
_SIGNATURE_FIELD_FREE = {"/V", "/AP", "/F"}


def _serialise(value: Any) -> bytes:
    stream = BytesIO()
    value.write_to_stream(stream)
    return stream.getvalue()


def _without(value: DictionaryObject, keys: set[str]) -> bytes:
    return _serialise(DictionaryObject({k: v for k, v in value.items() if k not in keys}))


def _is_signature_field(value: PdfObject | None) -> bool:
    node = value.get_object() if value is not None else None
    return isinstance(node, DictionaryObject) and (node.get("/FT") == "/Sig" or _parent_is_signature(node))


def _parent_is_signature(node: DictionaryObject) -> bool:
    parent = node.get("/Parent")
    parent = parent.get_object() if parent is not None else None
    return isinstance(parent, DictionaryObject) and parent.get("/FT") == "/Sig"


def _references(array: Any) -> list[tuple[int, int]]:
    array = array.get_object() if array is not None else None
    if not isinstance(array, ArrayObject):
        return []
    return [(item.idnum, item.generation) for item in array if isinstance(item, IndirectObject)]


def _appended_only_signatures(old: Any, new: Any, reader: PdfReader) -> bool:
    """`new` is `old` with signature fields or widgets appended (arrays of references)."""
    before, after = _references(old), _references(new)
    if after[: len(before)] != before:
        return False
    return all(_is_signature_field(reader.get_object(number)) for number, _ in after[len(before) :])


def _objects_rewritten(old_length: int, reader: PdfReader) -> list[int]:
    """Object numbers whose current definition lies after the first `old_length` bytes."""
    numbers = set()
    for table in reader.xref.values():
        numbers.update(number for number, offset in table.items() if offset >= old_length)
    for number, (stream_number, _) in reader.xref_objStm.items():
        stream_offset = next((table[stream_number] for table in reader.xref.values() if stream_number in table), 0)
        if stream_offset >= old_length:
            numbers.add(number)
    return sorted(numbers)


def _known(reader: PdfReader, number: int) -> bool:
    return any(number in table for table in reader.xref.values()) or number in reader.xref_objStm


def _problem(number: int, old: Any, new: Any, reader: PdfReader) -> str | None:
    """Why rewriting object `number` from `old` to `new` is more than adding a signature, or None."""
    if isinstance(old, DictionaryObject) and isinstance(new, DictionaryObject):
        kind = old.get("/Type")
        if kind == "/Catalog":
            if _without(old, _CATALOG_FREE) != _without(new, _CATALOG_FREE):
                return f"文档目录（对象 {number}）在签名后被修改"
            return None
        if kind == "/Page":
            if _without(old, _PAGE_FREE) != _without(new, _PAGE_FREE):
                return f"页面（对象 {number}）在签名后被修改"
            if not _appended_only_signatures(old.get("/Annots"), new.get("/Annots"), reader):
                return f"页面（对象 {number}）在签名后增加了签名以外的注释"
            return None
        if "/Fields" in old and "/Type" not in old:  # the interactive form
            if _without(old, _FORM_FREE) != _without(new, _FORM_FREE):
                return f"表单（对象 {number}）在签名后被修改"
            if not _appended_only_signatures(old.get("/Fields"), new.get("/Fields"), reader):
                return f"表单（对象 {number}）在签名后增加了签名以外的字段"
            return None
        if _is_signature_field(old) and not old.get("/V"):  # an empty signature field being filled
            if _without(old, _SIGNATURE_FIELD_FREE) != _without(new, _SIGNATURE_FIELD_FREE):
                return f"签名域（对象 {number}）在签名后被修改"
            return None
    if isinstance(old, ArrayObject) and isinstance(new, ArrayObject) and _appended_only_signatures(old, new, reader):
        return None
    if _serialise(old) != _serialise(new):
        return f"对象 {number} 在签名后被修改"
    return None


def changes_after_revision(revision: bytes, whole: bytes) -> list[str]:
    """Chinese descriptions of what the updates after `revision` (a prefix of `whole`) changed; [] if only signed."""
    if not whole.startswith(revision):
        return ["签名版本不是文件的前缀"]
    old_reader = PdfReader(BytesIO(revision), strict=False)
    new_reader = PdfReader(BytesIO(whole), strict=False)
    problems = []
    for number in _objects_rewritten(len(revision), new_reader):
        if not _known(old_reader, number):
            continue  # a new object: harmful only if an old object is changed to point to it (checked there)
        old = old_reader.get_object(number)
        new = new_reader.get_object(number)
        if isinstance(new, StreamObject) and new.get("/Type") in ("/XRef", "/ObjStm"):
            continue
        if old is None or new is None:
            problems.append(f"对象 {number} 在签名后被删除")
            continue
        problem = _problem(number, old, new, new_reader)
        if problem is not None:
            problems.append(problem)
    if len(old_reader.pages) != len(new_reader.pages):
        problems.append(f"页数在签名后由 {len(old_reader.pages)} 变为 {len(new_reader.pages)}")
    return problems
