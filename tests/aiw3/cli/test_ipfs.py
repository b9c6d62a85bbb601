"""``aiw3 ipfs add`` prints kubo's CID and stores the file; ``aiw3 ipfs cat`` gives it back."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from aiw3.cli import app
from aiw3.metrics import Metrics
from aiw3.pinning import build_pinner
from aiw3.settings import load_settings
from minting.ipfs import LocalPinner, PinataPinner
from minting.ipfs.unixfs import CHUNK_SIZE
from tests.minting.ipfs.kubo_stream import kubo_bytes

HELLO_V0 = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
HELLO_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def _env(tmp_path: Path) -> dict[str, str]:
    return {"AIW3_IPFS_DIR": str(tmp_path / "store"), "AIW3_PINNING": "local"}


def test_add_then_cat(tmp_path: Path) -> None:
    file = tmp_path / "hello.txt"
    file.write_bytes(b"hello world")
    runner = CliRunner()
    v0 = runner.invoke(app, ["ipfs", "add", str(file)], env=_env(tmp_path))
    assert v0.exit_code == 0, v0.output
    assert v0.stdout.strip() == HELLO_V0
    v1 = runner.invoke(app, ["ipfs", "add", "--cid-version", "1", str(file)], env=_env(tmp_path))
    assert v1.stdout.strip() == HELLO_V1
    for cid in (HELLO_V0, HELLO_V1, f"ipfs://{HELLO_V1}"):
        cat = runner.invoke(app, ["ipfs", "cat", cid], env=_env(tmp_path))
        assert cat.exit_code == 0, cat.output
        assert cat.stdout_bytes == b"hello world"


def test_a_multi_chunk_file(tmp_path: Path) -> None:
    data = kubo_bytes(CHUNK_SIZE + 1, "chunk-v0-seed")
    file = tmp_path / "big.bin"
    file.write_bytes(data)
    runner = CliRunner()
    added = runner.invoke(app, ["ipfs", "add", str(file)], env=_env(tmp_path))
    assert added.stdout.strip() == "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"
    assert (
        runner.invoke(app, ["ipfs", "cat", added.stdout.strip()], env=_env(tmp_path)).stdout_bytes
        == data
    )


def test_only_hash_stores_nothing(tmp_path: Path) -> None:
    file = tmp_path / "hello.txt"
    file.write_bytes(b"hello world")
    result = CliRunner().invoke(app, ["ipfs", "add", "-n", str(file)], env=_env(tmp_path))
    assert result.stdout.strip() == HELLO_V0
    assert not (tmp_path / "store").exists()


def test_add_reads_standard_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ipfs", "add", "-"], input=b"hello world", env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == HELLO_V0


def test_errors_are_one_line_with_a_code(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["ipfs", "cat", HELLO_V1], env=_env(tmp_path))
    assert missing.exit_code == 1
    assert "ipfs_not_found" in missing.stderr
    junk = runner.invoke(app, ["ipfs", "cat", "nonsense"], env=_env(tmp_path))
    assert junk.exit_code == 1
    assert "invalid_cid" in junk.stderr
    unread = runner.invoke(app, ["ipfs", "add", str(tmp_path / "nope")], env=_env(tmp_path))
    assert unread.exit_code == 1
    assert "read_failed" in unread.stderr
    bad_version = runner.invoke(app, ["ipfs", "add", "--cid-version", "2", "-"], env=_env(tmp_path))
    assert bad_version.exit_code == 2


def test_pinata_without_a_jwt_is_a_config_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["ipfs", "cat", HELLO_V1], env={"AIW3_PINNING": "pinata", "AIW3_PINATA_JWT": ""}
    )
    assert result.exit_code == 1
    assert "config_error" in result.stderr
    assert "AIW3_PINATA_JWT" in result.stderr


def test_the_factory_builds_the_configured_backend(tmp_path: Path) -> None:
    local = build_pinner(load_settings(pinning="local", ipfs_dir=tmp_path))
    assert isinstance(local, LocalPinner)
    pinata = build_pinner(load_settings(pinning="pinata", pinata_jwt="a.b.c"))
    assert isinstance(pinata, PinataPinner)
    assert "a.b.c" not in repr(pinata)


async def test_metrics_export_the_upload_histogram(tmp_path: Path) -> None:
    metrics = Metrics(CollectorRegistry())
    pinner = build_pinner(
        load_settings(pinning="local", ipfs_dir=tmp_path), histogram=metrics.ipfs_upload_duration
    )
    await pinner.pin_bytes(b"x", name="x")
    assert (
        b'ipfs_upload_duration_seconds_count{backend="local",status="ok"} 1.0' in metrics.render()
    )
