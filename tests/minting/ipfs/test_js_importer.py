"""The JS ``ipfs-unixfs-importer`` (from npm) computes the same CIDs as ours for any size.

An independent implementation, set to kubo's defaults explicitly (fixed 256 KiB chunks,
balanced layout, 174 links, raw leaves with CIDv1). It is installed once into a cache
directory (``AIW3_TEST_NPM_CACHE``, default ``~/.cache/aiw3-tests/npm``) from the npm registry.
Without node or npm the test skips, or fails under ``AIW3_TEST_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from minting.ipfs.unixfs import CHUNK_SIZE, MAX_LINKS, add
from tests.minting.ipfs.kubo_stream import KuboStream
from tests.services import unavailable

_PACKAGES = ["ipfs-unixfs-importer@17", "blockstore-core@7"]
_SCRIPT = Path(__file__).with_name("js") / "import.mjs"

# (size, chunk size, max links): kubo's chunk around its boundaries, and small chunks that make
# trees of two and three levels (> 174 leaves, > 174^2 with 3 links) without hundreds of MiB.
_CASES = [
    (0, CHUNK_SIZE, MAX_LINKS),
    (1, CHUNK_SIZE, MAX_LINKS),
    (CHUNK_SIZE, CHUNK_SIZE, MAX_LINKS),
    (CHUNK_SIZE + 1, CHUNK_SIZE, MAX_LINKS),
    (5 * (1 << 20) + 12345, CHUNK_SIZE, MAX_LINKS),
    (175 * 1024 + 1, 1024, MAX_LINKS),
    (100 * 1000 + 7, 1000, 3),
]


@pytest.fixture(scope="module")
def node_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm", FileNotFoundError("not on PATH"))
    default = Path.home() / ".cache" / "aiw3-tests" / "npm"
    cache = Path(os.environ.get("AIW3_TEST_NPM_CACHE", default))
    marker = cache / (".installed-" + "-".join(_PACKAGES))
    if not marker.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), *_PACKAGES]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            unavailable("npm registry", RuntimeError(done.stderr.strip()[-500:]))
        marker.touch()
    return cache / "node_modules"


def _js_cids(node_modules: Path, jobs: list[dict[str, object]]) -> list[str]:
    # ES modules resolve packages from the script's folder up (NODE_PATH is ignored), so the
    # script runs from beside the installed node_modules.
    script = node_modules.parent / "import.mjs"
    script.write_text(_SCRIPT.read_text())
    done = subprocess.run(
        ["node", str(script)],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return list(json.loads(done.stdout))


def test_the_js_importer_agrees(node_modules: Path, tmp_path: Path) -> None:
    jobs: list[dict[str, object]] = []
    ours: list[str] = []
    for index, (size, chunk_size, max_links) in enumerate(_CASES):
        path = tmp_path / f"case-{index}.bin"
        path.write_bytes(KuboStream(size, f"js-{index}").read())
        for version in (0, 1):
            with path.open("rb") as source:
                cid = add(source, cid_version=version, chunk_size=chunk_size, max_links=max_links)
            ours.append(str(cid))
            jobs.append(
                {
                    "path": str(path),
                    "cidVersion": version,
                    "chunkSize": chunk_size,
                    "maxLinks": max_links,
                }
            )
    assert _js_cids(node_modules, jobs) == ours
