"""Keypairs: loading, writing and, above all, never leaking the secret."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import stat
import traceback
from pathlib import Path

import pytest
from solders.keypair import Keypair

from chain.keys import (
    KeypairError,
    KeypairExists,
    Signer,
    load_keypair,
    load_keypair_file,
    parse_keypair,
    write_keypair_file,
)
from core.errors import ConfigError


def _secret_forms(keypair: Keypair) -> list[str]:
    """Every way the secret could show up in text if some code formatted it."""
    raw = bytes(keypair)
    seed = raw[:32]
    return [
        str(keypair),  # base58 of all 64 bytes: what str(Keypair) prints
        str(Keypair.from_seed(seed)),
        json.dumps(list(raw)),
        json.dumps(list(raw), separators=(",", ":")),
        ",".join(str(b) for b in seed[:8]),  # a fragment of a JSON array, as a file echo would show
        ", ".join(str(b) for b in seed[:8]),
        seed.hex(),
        str(list(seed[:8])),
    ]


def _assert_no_secret(keypair: Keypair, *texts: str) -> None:
    for text in texts:
        for form in _secret_forms(keypair):
            assert form not in text


def _error_texts(err: BaseException) -> list[str]:
    texts = [str(err), repr(err), "".join(traceback.format_exception(err))]
    if isinstance(err, ConfigError):
        texts.append(json.dumps(err.to_dict()))
    return texts


def test_written_file_round_trips_with_mode_0600(tmp_path: Path) -> None:
    signer = Signer.generate()
    path = write_keypair_file(tmp_path / "nested" / "id.json", signer)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The Solana CLI format: a JSON array of 64 integers.
    values = json.loads(path.read_text())
    assert isinstance(values, list)
    assert len(values) == 64
    loaded = load_keypair_file(path)
    assert loaded == signer
    assert loaded.pubkey == signer.pubkey


def test_write_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "id.json"
    first = Signer.generate()
    write_keypair_file(path, first)
    before = path.read_bytes()
    with pytest.raises(KeypairExists) as info:
        write_keypair_file(path, Signer.generate())
    assert path.read_bytes() == before
    assert "--force" in str(info.value)
    assert load_keypair_file(path) == first


def test_write_with_force_replaces_and_resets_mode(tmp_path: Path) -> None:
    path = tmp_path / "id.json"
    write_keypair_file(path, Signer.generate())
    path.chmod(0o644)
    second = Signer.generate()
    write_keypair_file(path, second, force=True)
    assert load_keypair_file(path) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # No temporary file is left next to it.
    assert [p.name for p in tmp_path.iterdir()] == ["id.json"]


def test_write_refuses_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "id.json"
    link.symlink_to(target)
    with pytest.raises(KeypairExists):
        write_keypair_file(link, Signer.generate())
    assert not target.exists()


def test_environment_accepts_json_and_base58(tmp_path: Path) -> None:
    keypair = Keypair()
    as_json = json.dumps(list(bytes(keypair)))
    as_base58 = str(keypair)
    for value in (as_json, as_base58, f"  {as_base58}\n"):
        signer = load_keypair(value, source="AIW3_SYSTEM_KEYPAIR")
        assert signer.pubkey == keypair.pubkey()
    path = write_keypair_file(tmp_path / "k.json", Signer(keypair))
    assert load_keypair(str(path), source="AIW3_SYSTEM_KEYPAIR").pubkey == keypair.pubkey()
    assert load_keypair(as_json, source="X").pubkey == keypair.pubkey()


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(KeypairError) as info2:
        load_keypair_file(missing)
    assert str(missing) in str(info2.value)
    assert "does not exist" in str(info2.value)
    with pytest.raises(KeypairError, match="is a directory"):
        load_keypair_file(tmp_path)


def test_signer_shows_only_the_public_key(caplog: pytest.LogCaptureFixture) -> None:
    keypair = Keypair()
    signer = Signer(keypair)
    pubkey = str(keypair.pubkey())
    logger = logging.getLogger("test.keys")
    with caplog.at_level(logging.DEBUG):
        logger.info("signer %s", signer)
        logger.info("signer %r", signer)
        logger.info("in a dict %s", {"k": signer})
        logger.info(f"f-string {signer}")
    for text in (str(signer), repr(signer), f"{signer}", caplog.text):
        assert pubkey in text
    _assert_no_secret(keypair, str(signer), repr(signer), caplog.text)


def test_signer_cannot_be_pickled_or_copied() -> None:
    signer = Signer.generate()
    with pytest.raises(TypeError):
        pickle.dumps(signer)
    with pytest.raises(TypeError):
        copy.copy(signer)
    with pytest.raises(TypeError):
        copy.deepcopy(signer)


def test_signer_signs_verifiably() -> None:
    signer = Signer.generate()
    message = b"aiw3:activate:test"
    signature = signer.sign_message(message)
    assert signature.verify(signer.pubkey, message)
    assert not signature.verify(Signer.generate().pubkey, message)


def _malformed_variants(keypair: Keypair) -> dict[str, str]:
    raw = list(bytes(keypair))
    other = list(bytes(Keypair()))
    mismatched = raw[:32] + other[32:]
    return {
        "63 elements": json.dumps(raw[:63]),
        "65 elements": json.dumps([*raw, 1]),
        "element 256": json.dumps([*raw[:63], 256]),
        "negative element": json.dumps([-1, *raw[1:]]),
        "string element": json.dumps([str(raw[0]), *raw[1:]]),
        "float element": json.dumps([1.5, *raw[1:]]),
        "bool element": json.dumps([True, *raw[1:]]),
        "unterminated array": json.dumps(raw)[:-1],
        "trailing garbage": json.dumps(raw) + "x",
        "object": json.dumps({"secret": raw}),
        "mismatched public half": json.dumps(mismatched),
        "base58 of 63 bytes": str(keypair)[:-2],
        "base58 with bad char": str(keypair)[:-1] + "0",
        "base58 mismatched": str(Keypair.from_bytes(bytes(raw)))[:40] + "1" * 48,
        "mixed text": "secret: " + str(keypair),
        "empty": "   ",
    }


@pytest.mark.parametrize("variant", sorted(_malformed_variants(Keypair()).keys()))
def test_malformed_text_errors_never_echo_the_secret(
    variant: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keypair = Keypair()
    text = _malformed_variants(keypair)[variant]
    path = tmp_path / "bad.json"
    path.write_text(text)
    path.chmod(0o644)  # also triggers the permission warning: it must not carry content either
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(KeypairError) as from_env:
            load_keypair(text, source="AIW3_SYSTEM_KEYPAIR")
        with pytest.raises(KeypairError) as from_file:
            load_keypair_file(path)
    assert "AIW3_SYSTEM_KEYPAIR" in str(from_env.value)
    assert str(path) in str(from_file.value)
    for err in (from_env.value, from_file.value):
        # Nothing chained either: a JSONDecodeError would carry the whole document.
        assert err.__cause__ is None
        assert err.__context__ is None
        _assert_no_secret(keypair, *_error_texts(err))
    _assert_no_secret(keypair, caplog.text)


def test_binary_and_oversized_files_are_refused_without_echo(tmp_path: Path) -> None:
    keypair = Keypair()
    raw = bytes(keypair)
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe" + raw)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(list(raw)) * 40)
    for path, problem in ((binary, "not UTF-8"), (huge, "larger than")):
        with pytest.raises(KeypairError) as info:
            load_keypair_file(path)
        assert problem in str(info.value)
        _assert_no_secret(keypair, *_error_texts(info.value))


def test_shared_file_warns_without_content(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keypair = Keypair()
    path = write_keypair_file(tmp_path / "id.json", Signer(keypair))
    with caplog.at_level(logging.WARNING, logger="chain.keys"):
        load_keypair_file(path)
    assert caplog.records == []
    path.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="chain.keys"):
        load_keypair_file(path)
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
    _assert_no_secret(keypair, caplog.text)


def test_parse_keypair_matches_solders_for_both_formats() -> None:
    keypair = Keypair()
    assert parse_keypair(str(keypair), source="s").pubkey == keypair.pubkey()
    assert parse_keypair(keypair.to_json(), source="s").pubkey == keypair.pubkey()
