"""Settings: defaults from ARCHITECTURE.md, and one clear line naming a wrong variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aiw3.cli import app
from aiw3.settings import Pinning, load_settings
from core.errors import ConfigError
from core.types import StandardName


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("AIW3_") and not key.startswith("AIW3_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout


def test_defaults_run_everything_locally() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./aiw3.db"
    assert settings.rpc_url == "http://127.0.0.1:8899"
    assert settings.ws_url == "ws://127.0.0.1:8900"
    assert settings.redis_url is None
    assert settings.asset_standard is StandardName.TOKEN2022
    assert settings.pinning is Pinning.LOCAL


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AIW3_ASSET_STANDARD=metaplex\nAIW3_REDIS_URL=redis://h:1/0\n")
    monkeypatch.setenv("AIW3_RPC_FALLBACK_URLS", "http://a:1, https://b:2")
    settings = load_settings()
    assert settings.asset_standard is StandardName.METAPLEX
    assert settings.redis_url == "redis://h:1/0"
    assert settings.rpc_fallback_urls == ["http://a:1", "https://b:2"]


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("AIW3_DATABASE_URL", "mongodb://x/y", "scheme must be one of"),
        ("AIW3_RPC_URL", "127.0.0.1:8899", "scheme must be one of"),
        ("AIW3_WS_URL", "http://127.0.0.1:8900", "scheme must be one of"),
        ("AIW3_ASSET_STANDARD", "erc721", "'token2022' or 'metaplex'"),
        ("AIW3_PINNING", "s3", "'local' or 'pinata'"),
        ("AIW3_SYSTEM_KEYPAIR", "/nonexistent/id.json", "does not exist"),
        ("AIW3_SYSTEM_KEYPAIR", "[1,2,3]", "64 integers"),
        ("AIW3_API_PORT", "99999", "less than or equal"),
        ("AIW3_LOG_LEVEL", "LOUD", "DEBUG, INFO"),
    ],
)
def test_wrong_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(f"invalid configuration: {variable}: ")
    assert fragment in message
    assert caught.value.details["variables"] == [variable]


def test_rejected_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIW3_DATABASE_URL", "oracle://user:hunter2secret@db/x")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2secret" not in str(caught.value)


def test_cli_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIW3_ASSET_STANDARD", "erc721")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("error[config_error]: invalid configuration: AIW3_ASSET_STANDARD")


def test_keypair_file_is_checked_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from chain.keys import Signer, write_keypair_file

    path = write_keypair_file(tmp_path / "system.json", Signer.generate())
    monkeypatch.setenv("AIW3_SYSTEM_KEYPAIR", str(path))
    settings = load_settings()
    assert settings.system_keypair is not None
    assert str(path) not in repr(settings)  # the setting is a SecretStr


def test_creators_and_collections_are_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    system = "11111111111111111111111111111111"
    other = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
    settings = load_settings()
    assert settings.trusted_creators(system) == [system]  # default: the system wallet alone
    monkeypatch.setenv("AIW3_CREATORS", f"{other}, {system}")
    monkeypatch.setenv("AIW3_COLLECTIONS", other)
    settings = load_settings()
    assert settings.trusted_creators(system) == [other, system]
    assert settings.collections == [other]
    monkeypatch.setenv("AIW3_COLLECTIONS", "not-a-key")
    with pytest.raises(ConfigError, match="AIW3_COLLECTIONS"):
        load_settings()


def test_system_signer_says_how_to_configure_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from chain.keys import KeypairError, Signer, write_keypair_file

    monkeypatch.delenv("AIW3_SYSTEM_KEYPAIR", raising=False)
    with pytest.raises(KeypairError) as info:
        load_settings().system_signer()
    assert "AIW3_SYSTEM_KEYPAIR" in str(info.value)
    assert "aiw3 keys new" in str(info.value)
    signer = Signer.generate()
    monkeypatch.setenv("AIW3_SYSTEM_KEYPAIR", str(write_keypair_file(tmp_path / "k.json", signer)))
    assert load_settings().system_signer().pubkey == signer.pubkey
