"""Message encryption for the Redis layer: ``symmetric_encryption_keys``.

Each configured key is any non-empty string (or bytes); its SHA-256 digest is the Fernet key,
as in Django Channels' ``channels_redis``, so the two derive the same keys. The first key
encrypts; every key decrypts, so keys can be rotated: put the new key first, keep the old one
after it until every message encrypted with it has expired, then drop it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from channels_core.exceptions import ImproperlyConfigured
from channels_core.serialization import unpack


class MessageCipher:
    """Encrypts packed messages with the first key and decrypts them with any key."""

    def __init__(self, keys: Any) -> None:
        if (
            not isinstance(keys, (list, tuple))
            or not keys
            or not all(isinstance(key, (str, bytes)) and key for key in keys)
        ):
            raise ImproperlyConfigured(
                "Redis layer option 'symmetric_encryption_keys' must be a non-empty list of "
                "non-empty strings (the first encrypts, all decrypt), such as "
                f"[os.environ['CHANNELS_KEY']]; it is a {type(keys).__name__} (its value is "
                "not shown, as it holds secrets)."
            )
        self._fernet = MultiFernet([Fernet(self.derive(key)) for key in keys])

    @staticmethod
    def derive(key: str | bytes) -> bytes:
        """The Fernet key made from a configured key: its SHA-256 digest, base64-encoded."""
        raw = key.encode("utf-8") if isinstance(key, str) else key
        return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())

    def encrypt(self, data: bytes) -> bytes:
        """*data* encrypted with the first key."""
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes | None:
        """*token* decrypted with whichever key fits, or None when none does."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            return None


def read_packed(data: bytes, cipher: MessageCipher | None) -> dict | None:
    """The dict packed in *data* (encrypted, when the layer has a *cipher*), or None when
    *data* is not one (encrypted with other keys, or not encrypted as the layer expects)."""
    if cipher is not None:
        data = cipher.decrypt(data)
        if data is None:
            return None
    try:
        value = unpack(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
