"""kubo's deterministic test files: ``testutils.DeterministicRandomReaderBytes(size, seed)``.

kubo's ``test/cli`` builds its ``ipfs add`` vectors from a ChaCha20 key stream (key =
sha256(seed), zero nonce, counter from 0); ``cryptography``'s ChaCha20 takes the 4-byte
little-endian counter and the 12-byte nonce as one 16-byte value, all zero here.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms


class KuboStream:
    """A binary stream of ``size`` bytes, generated as it is read (so 256 MiB costs no memory)."""

    def __init__(self, size: int, seed: str) -> None:
        key = hashlib.sha256(seed.encode()).digest()
        self._cipher = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
        self._remaining = size

    def read(self, size: int = -1) -> bytes:
        wanted = self._remaining if size < 0 else min(size, self._remaining)
        self._remaining -= wanted
        return self._cipher.update(bytes(wanted))


def kubo_bytes(size: int, seed: str) -> bytes:
    return KuboStream(size, seed).read()
