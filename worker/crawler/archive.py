"""Raw fetched bytes, stored by content (``XXGK_ARCHIVE_DIR``).

The key is the sha256 hex of the bytes; the file lives at ``<root>/ab/cd/<sha256>`` so no
directory grows past 65,536 entries. Writes go to a temporary file in the target directory
and are renamed into place, so a reader never sees half a file and two workers storing the
same bytes at once both succeed (the second rename replaces identical content). Storing the
same bytes again is a no-op: messages carry the key, never the body.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArchiveStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where ``key`` lives. Refuses anything but a sha256 hex digest (no path tricks)."""
        if not _KEY.match(key or ""):
            raise ValueError(f"not a sha256 hex key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = sha256_hex(data)
        target = self.path(key)
        if target.is_file() and target.stat().st_size == len(data):
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``KeyError`` when there are none."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(_KEY.match(key)) and self.path(key).is_file()
