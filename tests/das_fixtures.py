"""Where the DAS conformance fixtures are: ``shared/fixtures/das`` beside the checkout.

A development checkout and CI's clone both have the project's ``shared/`` folder beside them;
``AIW3_DAS_FIXTURES`` points elsewhere. A missing folder fails the tests that need it rather
than skipping them: the fixtures are part of the contract.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]


def _locate() -> Path:
    configured = os.environ.get("AIW3_DAS_FIXTURES")
    if configured:
        return Path(configured)
    return _REPO.parent / "shared" / "fixtures" / "das"


DAS_FIXTURES = _locate()


def das_case(name: str) -> dict[str, Any]:
    path = DAS_FIXTURES / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"DAS fixture {path} is missing: put the project's shared/ folder beside the "
            "checkout or set AIW3_DAS_FIXTURES"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def das_cases() -> list[str]:
    names = sorted(p.stem for p in DAS_FIXTURES.glob("*.json"))
    if not names:
        raise FileNotFoundError(f"no DAS fixtures in {DAS_FIXTURES}")
    return names
