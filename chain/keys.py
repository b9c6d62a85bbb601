"""Key material: load, hold and write keypairs without ever exposing the secret.

A solders ``Keypair`` prints its whole secret with ``str()``, so the rest of the code base never
holds a bare one: it holds a :class:`Signer`, whose ``repr``/``str`` show only the public key
and which refuses to be pickled or copied. Loading errors name the *source* (a path or an
environment variable name) and what is wrong with it, never the content: a malformed file is
still mostly secret.

Accepted formats, all of them the 64 bytes ``secret seed (32) || public key (32)``:

* the Solana CLI keypair file: a JSON array of 64 integers in 0..255;
* the same JSON array as text (for an environment variable);
* base58 of the 64 bytes (what wallets export as a "private key").
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import NoReturn

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from chain.pubkeys import decode_base58
from core.errors import ConfigError, ConflictError

__all__ = [
    "KeypairError",
    "KeypairExists",
    "Signer",
    "load_keypair",
    "load_keypair_file",
    "parse_keypair",
    "write_keypair_file",
]

KEYPAIR_LENGTH = 64

# A Solana CLI keypair file is about 250 bytes; anything much larger is not a keypair and is not
# worth reading into memory (or into an error message by accident).
_MAX_FILE_BYTES = 4096
_BASE58_CHARS = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")

_log = logging.getLogger(__name__)


class KeypairError(ConfigError):
    """A keypair could not be loaded. The message names the source, never its content."""

    code = "invalid_keypair"


class KeypairExists(ConflictError):
    """Writing a keypair would overwrite an existing file."""

    code = "keypair_exists"


class Signer:
    """One keypair, held so that it cannot leak through ``str``, ``repr``, logs or pickles.

    Use :attr:`pubkey` and :meth:`sign_message`; pass :meth:`solders_keypair` straight into a
    solders transaction constructor and do not keep the result around.
    """

    __slots__ = ("_keypair",)

    def __init__(self, keypair: Keypair) -> None:
        if not isinstance(keypair, Keypair):
            raise TypeError("Signer wraps a solders Keypair")
        self._keypair = keypair

    @classmethod
    def generate(cls) -> Signer:
        """A fresh random keypair (OS randomness)."""
        return cls(Keypair())

    @property
    def pubkey(self) -> Pubkey:
        return self._keypair.pubkey()

    def sign_message(self, message: bytes) -> Signature:
        """Ed25519 signature of ``message`` (for a transaction: the serialized message)."""
        return self._keypair.sign_message(message)

    def solders_keypair(self) -> Keypair:
        """The wrapped keypair, for solders APIs that need a signer object.

        Pass it directly (``VersionedTransaction(message, [signer.solders_keypair()])``);
        never store, log or format it: ``str(keypair)`` is the whole secret.
        """
        return self._keypair

    def __repr__(self) -> str:
        return f"Signer(pubkey={self._keypair.pubkey()})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Signer):
            return NotImplemented
        return self._keypair == other._keypair

    def __hash__(self) -> int:
        return hash(self._keypair.pubkey())

    def __reduce__(self) -> NoReturn:
        # Pickling would copy the secret into caches, queues or crash dumps.
        raise TypeError("a Signer holds a secret key and cannot be pickled or copied")


def parse_keypair(text: str, *, source: str) -> Signer:
    """A keypair from text: a JSON array of 64 integers, or base58 of the 64 bytes.

    ``source`` says where the text came from (a path, an environment variable name) and is the
    only thing about the input an error message repeats.
    """
    stripped = text.strip()
    if not stripped:
        _fail(source, "is empty")
    if stripped.startswith("["):
        raw = _bytes_from_json(stripped, source)
    elif set(stripped) <= _BASE58_CHARS:
        decoded = decode_base58(stripped)
        if decoded is None or len(decoded) != KEYPAIR_LENGTH:
            _fail(source, f"is base58 but does not decode to {KEYPAIR_LENGTH} bytes")
        raw = decoded
    else:
        _fail(source, f"is neither a JSON array of {KEYPAIR_LENGTH} integers nor base58 text")
    return _signer_from_bytes(raw, source)


def load_keypair_file(path: str | os.PathLike[str]) -> Signer:
    """A keypair from a file in the Solana CLI format (``solana-keygen new``)."""
    file = Path(path).expanduser()
    return _load_file(file, source=f"keypair file {file}")


def _load_file(file: Path, *, source: str) -> Signer:
    content = _read_small_file(file, source)
    _warn_if_shared(file)
    return parse_keypair(content, source=source)


def load_keypair(value: str, *, source: str) -> Signer:
    """A keypair from a setting whose value is the keypair itself or a path to a keypair file.

    A JSON array or pure base58 text is the keypair; anything else (it contains ``/``, ``.``,
    ``~`` or other characters base58 lacks) is read as a path. Errors about that file do not
    repeat the path either: a mistyped secret (base64 has ``/``) would otherwise be echoed.
    """
    stripped = value.strip()
    if not stripped:
        _fail(source, "is empty")
    if stripped.startswith("[") or set(stripped) <= _BASE58_CHARS:
        return parse_keypair(stripped, source=source)
    return _load_file(
        Path(stripped).expanduser(),
        source=f"the file named by {source} (its value is neither a JSON array nor base58, "
        "so it is read as a path)",
    )


def write_keypair_file(
    path: str | os.PathLike[str], signer: Signer, *, force: bool = False
) -> Path:
    """Write ``signer`` in the Solana CLI format, readable by the owner only (mode 0600).

    Without ``force`` an existing file is never touched (:class:`KeypairExists`). With it, the
    new key goes to a temporary file in the same directory first and then replaces the old one
    atomically, so a crash never leaves a half-written keypair behind.
    """
    file = Path(path).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    content = json.dumps(list(bytes(signer._keypair)), separators=(",", ":")).encode()
    if force:
        _replace_atomically(file, content)
        return file
    try:
        # O_EXCL also refuses a symlink planted at the path, dangling or not.
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    if fd < 0:
        raise KeypairExists(
            f"{file} already exists; refusing to overwrite a keypair (use --force to replace it)",
            details={"path": str(file)},
        )
    _write_fd(fd, content)
    return file


def _replace_atomically(file: Path, content: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    try:
        _write_fd(fd, content)
        os.replace(tmp_name, file)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _write_fd(fd: int, content: bytes) -> None:
    with os.fdopen(fd, "wb") as handle:
        # The umask can only remove bits from 0600, but a pre-set ACL or an odd umask must not
        # leave the key readable by others: set the mode explicitly.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _read_small_file(file: Path, source: str) -> str:
    problem: str | None = None
    content = ""
    try:
        with file.open("rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        problem = "does not exist"
    except IsADirectoryError:
        problem = "is a directory"
    except PermissionError:
        problem = "is not readable by this user"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or type(exc).__name__})"
    else:
        if len(data) > _MAX_FILE_BYTES:
            problem = f"is larger than {_MAX_FILE_BYTES} bytes, so it is not a keypair file"
        else:
            decoded = _utf8(data)
            if decoded is None:
                problem = "is not UTF-8 text"
            else:
                content = decoded
    if problem is not None:
        _fail(source, problem)
    return content


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _warn_if_shared(file: Path) -> None:
    try:
        mode = file.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning(
            "keypair file %s is accessible by group or others (mode %o); run chmod 600 on it",
            file,
            stat.S_IMODE(mode),
        )


def _bytes_from_json(text: str, source: str) -> bytes:
    # json.loads is called in a helper that returns None on failure so that no exception
    # carrying the document (JSONDecodeError.doc is the whole text) is chained to ours.
    values = _json_loads(text)
    if values is _INVALID_JSON:
        _fail(source, "is not valid JSON")
    expected = f"a JSON array of {KEYPAIR_LENGTH} integers in 0..255"
    if not isinstance(values, list):
        _fail(source, f"is not {expected}")
    if len(values) != KEYPAIR_LENGTH:
        _fail(source, f"has {len(values)} elements; expected {expected}")
    if not all(type(v) is int and 0 <= v <= 255 for v in values):
        _fail(source, f"has elements that are not integers in 0..255; expected {expected}")
    return bytes(values)


_INVALID_JSON = object()


def _json_loads(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _INVALID_JSON


def _signer_from_bytes(raw: bytes, source: str) -> Signer:
    keypair = _keypair_from_bytes(raw)
    if keypair is None:
        _fail(
            source,
            "is not a valid keypair: its last 32 bytes are not the public key of its first 32",
        )
    return Signer(keypair)


def _keypair_from_bytes(raw: bytes) -> Keypair | None:
    try:
        return Keypair.from_bytes(raw)
    except ValueError:
        return None


def _fail(source: str, problem: str) -> NoReturn:
    raise KeypairError(f"{source} {problem}", details={"source": source})
