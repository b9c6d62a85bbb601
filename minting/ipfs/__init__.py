"""NFT content on IPFS: a kubo-exact UnixFS importer, a local block store and Pinata.

``LocalPinner`` and ``PinataPinner`` both satisfy :class:`Pinner`; ``aiw3`` picks one from
the settings. :func:`unixfs.add` computes what ``ipfs add`` prints without storing anything.
"""

from __future__ import annotations

from minting.ipfs.local import LocalPinner, parse_cid
from minting.ipfs.pinata import PinataPinner
from minting.ipfs.pinner import Pinner, json_bytes, upload_histogram
from minting.ipfs.unixfs import CidVersion

__all__ = [
    "CidVersion",
    "LocalPinner",
    "PinataPinner",
    "Pinner",
    "json_bytes",
    "parse_cid",
    "upload_histogram",
]
