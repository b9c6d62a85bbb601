"""``aiw3 keys new`` / ``aiw3 keys pubkey``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from solders.keypair import Keypair
from typer.testing import CliRunner

from aiw3.cli import app
from chain.keys import load_keypair_file


def _runner() -> CliRunner:
    return CliRunner()


def test_new_writes_0600_and_prints_only_the_public_key(tmp_path: Path) -> None:
    path = tmp_path / "system.json"
    result = _runner().invoke(app, ["keys", "new", str(path)])
    assert result.exit_code == 0, result.output
    signer = load_keypair_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert result.stdout.strip() == str(signer.pubkey)
    secret = Keypair.from_bytes(bytes(json.loads(path.read_text())))
    for text in (result.stdout, result.stderr):
        assert str(secret) not in text
        assert path.read_text() not in text
        assert ",".join(str(b) for b in bytes(secret)[:8]) not in text
    assert str(path) in result.stderr


def test_new_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "system.json"
    assert _runner().invoke(app, ["keys", "new", str(path)]).exit_code == 0
    before = path.read_bytes()
    refused = _runner().invoke(app, ["keys", "new", str(path)])
    assert refused.exit_code != 0
    assert "keypair_exists" in refused.stderr
    assert "--force" in refused.stderr
    assert path.read_bytes() == before

    forced = _runner().invoke(app, ["keys", "new", str(path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert path.read_bytes() != before
    assert forced.stdout.strip() == str(load_keypair_file(path).pubkey)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_pubkey_reads_a_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    created = _runner().invoke(app, ["keys", "new", str(path)])
    expected = created.stdout.strip()
    from_file = _runner().invoke(app, ["keys", "pubkey", str(path)])
    assert from_file.stdout.strip() == expected
    from_env = _runner().invoke(app, ["keys", "pubkey"], env={"AIW3_SYSTEM_KEYPAIR": str(path)})
    assert from_env.exit_code == 0, from_env.output
    assert from_env.stdout.strip() == expected


def test_pubkey_of_a_malformed_file_fails_without_echo(tmp_path: Path) -> None:
    keypair = Keypair()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(list(bytes(keypair))[:63]))
    result = _runner().invoke(app, ["keys", "pubkey", str(path)])
    assert result.exit_code != 0
    assert "invalid_keypair" in result.stderr
    assert ",".join(str(b) for b in bytes(keypair)[:8]) not in result.output
    assert ", ".join(str(b) for b in bytes(keypair)[:8]) not in result.output
