"""Synthetic `.torrent` metainfo, bencoded with `bencode2`; info hashes as BEP 3 defines them.

The info hash is the SHA-1 of the bencoded `info` dictionary (BEP 3). Pieces are derived from a
per-torrent key with SHAKE-256, so a torrent is rebuilt on demand instead of kept in memory.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from bencode2 import bencode

_MIN_PIECE_LENGTH = 256 * 1024
_TARGET_PIECES = 1500


def piece_length_for(length: int) -> int:
    """The power-of-two piece length giving at most about 1,500 pieces (256 KiB at least)."""
    wanted = max(_MIN_PIECE_LENGTH, math.ceil(length / _TARGET_PIECES))
    return 1 << (wanted - 1).bit_length()


@dataclass(frozen=True, slots=True)
class TorrentSpec:
    """What one single-file torrent is built from.

    Attributes:
        key: Bytes the piece hashes derive from; two specs with different keys differ in hash.
        name: The file name in the `info` dictionary.
        length: The file size in bytes.
        created_at: `creation date` (epoch seconds).
    """

    key: bytes
    name: str
    length: int
    created_at: int

    def info(self) -> dict[bytes, object]:
        """The `info` dictionary: `name`, `piece length`, `pieces` and `length`."""
        piece_length = piece_length_for(self.length)
        count = math.ceil(self.length / piece_length)
        pieces = hashlib.shake_256(self.key).digest(20 * count)
        return {
            b"length": self.length,
            b"name": self.name.encode(),
            b"piece length": piece_length,
            b"pieces": pieces,
        }

    def info_hash(self) -> bytes:
        """SHA-1 of the bencoded `info` dictionary (20 raw bytes)."""
        return hashlib.sha1(bencode(self.info())).digest()

    def metainfo(self, trackers: tuple[str, ...]) -> bytes:
        """The bencoded `.torrent` file announcing to `trackers` (the first is `announce`)."""
        meta: dict[bytes, object] = {
            b"created by": b"miauflix simulator",
            b"creation date": self.created_at,
            b"info": self.info(),
        }
        if trackers:
            meta[b"announce"] = trackers[0].encode()
            meta[b"announce-list"] = [[tracker.encode()] for tracker in trackers]
        return bytes(bencode(meta))
