"""PII columns: SM4-encrypted at rest with a key id (for rotation), plus keyed SM3 blind indexes for exact
search; plain text only in memory.

Stored value: ``<key id>$<base64 token>`` (as ASCII bytes for binary values such as agreement PDFs). The
token is the facade's authenticated SM4 format (SM4-CBC with a random IV, then HMAC-SM3 over version, IV and
ciphertext: encrypt-then-MAC, see app/crypto/base.py), so a changed byte, a wrong key or a value moved
between key ids fails to decrypt instead of giving garbage.

Keys are files in the key folder, never in code or in the database:
- ``pii.key`` is key id ``k1``; ``pii.k2.key``, ``pii.k3.key`` … are ``k2``, ``k3`` …; the highest number
  encrypts, every one of them decrypts (`flask keys rotate-pii` adds the next one);
- ``pii-index.key`` keys the blind index: HMAC-SM3 over ``<kind>:<normal form>`` (kinds: id, phone,
  card, cert), hex. It is separate from the encryption keys and does not rotate with them (a new index key means
  `flask pii reindex`).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import LargeBinary, String, Text, event, inspect
from sqlalchemy.types import TypeDecorator

from app.crypto import get_provider, sm4_decrypt, sm4_encrypt
from app.domain.pii_mask import NORMALIZERS, PiiKind
from app.platform.errors import ConfigError

INDEX_KEY_FILE = "pii-index.key"
_KEY_FILE = re.compile(r"^pii(?:\.k(\d+))?\.key$")


def key_file_name(number: int) -> str:
    return "pii.key" if number == 1 else f"pii.k{number}.key"


def read_pii_keys(folder: Path) -> dict[str, bytes]:
    """Every PII encryption key in `folder`, by key id (k1, k2, …)."""
    found: dict[str, bytes] = {}
    if not folder.is_dir():
        return found
    for path in folder.iterdir():
        match = _KEY_FILE.match(path.name)
        if match and path.is_file():
            found[f"k{int(match[1] or 1)}"] = bytes.fromhex(path.read_text().strip())
    return found


def active_key_id(keys: dict[str, bytes]) -> str:
    return max(keys, key=lambda key_id: int(key_id[1:]))


def rotate_pii_key(folder: Path) -> str:
    """Create the next key file (0600, never overwriting); it becomes the active key. Returns its key id."""
    keys = read_pii_keys(folder)
    number = int(active_key_id(keys)[1:]) + 1 if keys else 1
    path = folder / key_file_name(number)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(16))
    return f"k{number}"


class PiiKeyring:
    """The active key encrypts; every known key id can decrypt; the index key computes blind indexes."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._active: str | None = None
        self._index_key: bytes | None = None

    def configure(self, keys: dict[str, bytes], active: str, index_key: bytes | None = None) -> None:
        if active not in keys:
            raise ConfigError("PII 加密密钥未配置", code="PII_KEY_MISSING", details={"key_id": active})
        self._keys = dict(keys)
        self._active = active
        self._index_key = index_key

    def configure_from_folder(self, folder: Path) -> bool:
        """Load every key file of `folder`; False (and nothing changed) when it holds no PII key."""
        keys = read_pii_keys(folder)
        if not keys:
            return False
        index_path = folder / INDEX_KEY_FILE
        index_key = bytes.fromhex(index_path.read_text().strip()) if index_path.is_file() else None
        self.configure(keys, active_key_id(keys), index_key)
        return True

    @property
    def configured(self) -> bool:
        return self._active is not None

    @property
    def active_key_id(self) -> str | None:
        return self._active

    def encrypt(self, plaintext: str) -> str:
        return self.encrypt_bytes(plaintext.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        return self.decrypt_bytes(stored.encode("ascii")).decode()

    def encrypt_bytes(self, plaintext: bytes) -> bytes:
        """``<key id>$<base64 token>`` as ASCII bytes."""
        if self._active is None:
            raise ConfigError("PII 加密密钥未配置", code="PII_KEY_MISSING")
        token = sm4_encrypt(self._keys[self._active], plaintext)
        return f"{self._active}$".encode() + base64.b64encode(token)

    def decrypt_bytes(self, stored: bytes) -> bytes:
        key_id, _, payload = stored.decode("ascii", "replace").partition("$")
        if key_id not in self._keys:
            raise ConfigError("PII 解密密钥缺失", code="PII_KEY_MISSING", details={"key_id": key_id})
        return sm4_decrypt(self._keys[key_id], base64.b64decode(payload))

    def key_id_of(self, stored: str | bytes) -> str:
        text = stored.decode("ascii", "replace") if isinstance(stored, bytes) else stored
        return text.partition("$")[0]

    def blind_index(self, kind: PiiKind, value: str) -> str:
        """HMAC-SM3 (index key) over the kind and the value's normal form, 64 hex characters."""
        if self._index_key is None:
            raise ConfigError("PII 检索索引密钥未配置（请运行 flask keys init）", code="PII_INDEX_KEY_MISSING")
        normal = NORMALIZERS[kind](value)
        return get_provider().hmac_sm3(self._index_key, f"{kind}:{normal}".encode()).hex()


keyring = PiiKeyring()


class EncryptedString(TypeDecorator[str]):
    impl = String(512)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else keyring.encrypt(value)

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else keyring.decrypt(value)


class EncryptedText(EncryptedString):
    """Like EncryptedString, for values of any length (e.g. a whole form draft as JSON)."""

    impl = Text()
    cache_ok = True


class EncryptedBytes(TypeDecorator[bytes]):
    """Binary values (agreement PDFs) encrypted like EncryptedString, stored as ASCII bytes."""

    impl = LargeBinary()
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: object) -> bytes | None:
        return None if value is None else keyring.encrypt_bytes(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: object) -> bytes | None:
        return None if value is None else keyring.decrypt_bytes(bytes(value))


ENCRYPTED_TYPES = (EncryptedString, EncryptedBytes)


# --- blind index columns ------------------------------------------------------------------------------
BLIND_INDEX_INFO = "blind_index_of"  # column.info key: (source attribute, kind)


def blind_index_column_info(source: str, kind: PiiKind) -> dict[str, Any]:
    return {BLIND_INDEX_INFO: (source, kind)}


def blind_index_columns(model: type) -> dict[str, tuple[str, PiiKind]]:
    """index attribute -> (source attribute, kind) for a mapped class."""
    table = model.__table__  # type: ignore[attr-defined]
    return {column.key: column.info[BLIND_INDEX_INFO] for column in table.columns if BLIND_INDEX_INFO in column.info}


def blind_index(kind: PiiKind, value: str | None) -> str | None:
    """The blind index of one plain-text value; None for an empty one (nothing to search for)."""
    return keyring.blind_index(kind, value) if value else None


def blind_indexes(model: type, value_of: Callable[[str], Any]) -> dict[str, str | None]:
    """index attribute -> its blind index, each from its source's plain text as `value_of(source)` gives it:
    a mapped object's attribute (the mapper hook) or a row's value (bulk inserts, which bypass the hook)."""
    return {
        index_attr: blind_index(kind, value_of(source))
        for index_attr, (source, kind) in blind_index_columns(model).items()
    }


def fill_blind_indexes(target: Any) -> None:
    """Set every blind index of a mapped object from its (plain text) source attribute."""
    for index_attr, value in blind_indexes(type(target), lambda source: getattr(target, source)).items():
        setattr(target, index_attr, value)


def install_blind_indexes(model: type) -> None:
    """Write the model's blind indexes on every insert, and on an ORM update for the sources that changed
    (a source left alone is not read: it may not even be loaded). Bulk UPDATE statements bypass this: run
    `flask pii reindex` after one."""

    def before_insert(_mapper: Any, _connection: Any, target: Any) -> None:
        fill_blind_indexes(target)

    def before_update(_mapper: Any, _connection: Any, target: Any) -> None:
        state = inspect(target)
        for index_attr, (source, kind) in blind_index_columns(type(target)).items():
            if state.attrs[source].history.has_changes():
                setattr(target, index_attr, blind_index(kind, getattr(target, source)))

    event.listen(model, "before_insert", before_insert)
    event.listen(model, "before_update", before_update)


def encrypted_columns(model: type) -> list[Any]:
    """The model's encrypted attributes (for `defer(...)` where a query has no use for them)."""
    return [getattr(model, c.key) for c in model.__table__.columns if isinstance(c.type, ENCRYPTED_TYPES)]  # type: ignore[attr-defined]
