"""The configured IPFS pinner: ``AIW3_PINNING=local`` (``AIW3_IPFS_DIR``) or ``pinata``
(``AIW3_PINATA_JWT``)."""

from __future__ import annotations

from prometheus_client import Histogram

from aiw3.settings import Pinning, Settings
from core.errors import ConfigError
from minting.ipfs import LocalPinner, PinataPinner, Pinner


def build_pinner(settings: Settings, *, histogram: Histogram | None = None) -> Pinner:
    """The backend the settings name; ``histogram`` is ``Metrics.ipfs_upload_duration``."""
    if settings.pinning is Pinning.PINATA:
        jwt = settings.pinata_jwt.get_secret_value().strip() if settings.pinata_jwt else ""
        if not jwt:
            raise ConfigError(
                "AIW3_PINATA_JWT is required when AIW3_PINNING=pinata",
                details={"variables": ["AIW3_PINATA_JWT"]},
            )
        return PinataPinner(jwt, histogram=histogram)
    return LocalPinner(settings.ipfs_dir, histogram=histogram)
