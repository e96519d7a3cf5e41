"""Secrets at rest: MultiFernet encryption and the EncryptedText / EncryptedBytes column types."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import LargeBinary, Text, select, type_coerce, update
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator


class SecretKeyError(RuntimeError):
    """A stored secret cannot be decrypted with the configured keys."""


class KeyRing:
    """The configured Fernet keys; the first one encrypts, all of them decrypt."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self.keys = list(keys)
        self._multi = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt under the newest key."""
        return self._multi.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """Decrypt with whichever configured key made `token`."""
        try:
            return self._multi.decrypt(token)
        except InvalidToken:
            raise SecretKeyError(
                "A stored secret cannot be decrypted: the key that encrypted it is not in "
                "SM_SECRET_KEYS (keep old keys listed after the new one until rotate-keys ran)."
            ) from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt `token` under the newest key."""
        try:
            return self._multi.rotate(token)
        except InvalidToken:
            raise SecretKeyError(
                "A stored secret was made with a key that is not configured."
            ) from None


_keyring: KeyRing | None = None


def configure(keys: list[str]) -> KeyRing:
    """Install the key ring used by every encrypted column of this process."""
    global _keyring
    _keyring = KeyRing(keys)
    return _keyring


def keyring() -> KeyRing:
    """The installed key ring."""
    if _keyring is None:
        raise RuntimeError("secrets.configure() has not been called (create the app first)")
    return _keyring


def encrypt_text(value: str) -> str:
    """Encrypt a string for storage."""
    return keyring().encrypt(value.encode()).decode("ascii")


def decrypt_text(token: str) -> str:
    """Decrypt a stored string."""
    return keyring().decrypt(token.encode("ascii")).decode()


class EncryptedText(TypeDecorator):
    """A text column whose value is encrypted at rest; the application sees plaintext."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else encrypt_text(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else decrypt_text(value)


class EncryptedBytes(TypeDecorator):
    """A binary column whose value is encrypted at rest."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else keyring().encrypt(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else keyring().decrypt(bytes(value))


def encrypted_columns(metadata: Any) -> list[tuple[Any, Any]]:
    """Every (table, column) of `metadata` stored with an encrypted type."""
    found = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText | EncryptedBytes):
                found.append((table, column))
    return found


def rotate_all(s: Session, metadata: Any, batch: int = 1000) -> int:
    """Re-encrypt every encrypted value under the newest key; return how many were rewritten."""
    ring = keyring()
    count = 0
    for table, column in encrypted_columns(metadata):
        raw_type = Text() if isinstance(column.type, EncryptedText) else LargeBinary()
        pk = list(table.primary_key.columns)
        if len(pk) != 1:
            raise RuntimeError(f"{table.name} needs a single-column primary key to rotate")
        pk_col = pk[0]
        last = None
        while True:
            q = select(pk_col, type_coerce(column, raw_type)).where(column.is_not(None))
            if last is not None:
                q = q.where(pk_col > last)
            rows = s.execute(q.order_by(pk_col).limit(batch)).all()
            if not rows:
                break
            for key, raw in rows:
                if isinstance(raw_type, Text):
                    new = ring.rotate(raw.encode("ascii")).decode("ascii")
                else:
                    new = ring.rotate(bytes(raw))
                s.execute(
                    update(table)
                    .where(pk_col == key)
                    .values({column.name: type_coerce(new, raw_type)})
                )
                count += 1
            last = rows[-1][0]
    return count
