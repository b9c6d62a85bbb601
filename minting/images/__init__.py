"""The tier images that ship with the package: ``level-<n>.png``, one per tier."""

from __future__ import annotations

from importlib import resources

from core.errors import ConfigError

CONTENT_TYPE = "image/png"


def tier_image(level: int) -> bytes:
    """The PNG of tier ``level``; a tier added to the table needs its image added here."""
    name = f"level-{level}.png"
    try:
        return resources.files(__package__).joinpath(name).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"no image for tier level {level}: add minting/images/{name}",
            details={"level": level},
        ) from None
