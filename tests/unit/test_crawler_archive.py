"""The content-addressed archive: sharded, atomic, idempotent."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from worker.crawler.archive import ArchiveStore


def test_put_then_get_by_sha256(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    data = "XX区2023年政府信息公开工作年度报告".encode()
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.get(key) == data
    assert store.path(key) == tmp_path / key[:2] / key[2:4] / key
    assert key in store


def test_put_is_idempotent_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    keys = {store.put(b"%PDF-1.7 same bytes") for _ in range(3)}
    assert len(keys) == 1
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [keys.pop()]


def test_concurrent_puts_of_the_same_bytes(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    data = b"x" * 200_000
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: store.put(data), range(16)))
    (key,) = keys
    assert store.get(key) == data
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


def test_empty_bytes_are_storable(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    assert store.get(store.put(b"")) == b""


def test_missing_key_is_a_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        ArchiveStore(tmp_path).get("0" * 64)


@pytest.mark.parametrize("key", ["../../etc/passwd", "ab/../../x", "", "A" * 64, "0" * 63, "/" + "0" * 63])
def test_keys_that_are_not_sha256_hex_are_refused(tmp_path: Path, key: str) -> None:
    store = ArchiveStore(tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        store.get(key)
    assert key not in store
