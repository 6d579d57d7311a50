"""The training host's blob store: verified uploads, the caps, LRU eviction that spares pinned blobs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hostd.training.blobs import BlobMismatch, BlobStore, Limits, StoreFull


def _put(store: BlobStore, data: bytes, pinned: set[str] | None = None) -> str:
    digest = hashlib.sha256(data).hexdigest()
    upload = store.begin(digest, len(data))
    upload.write(data)
    upload.finish(pinned or set())
    return digest


def _age(store: BlobStore, digest: str, seconds_ago: int) -> None:
    t = store.path(digest).stat().st_mtime - seconds_ago
    os.utime(store.path(digest), (t, t))


def test_least_recently_used_blobs_go_first_and_pinned_ones_stay(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, Limits(max_blob_bytes=100, max_total_bytes=250))
    a, b = _put(store, b"a" * 100), _put(store, b"b" * 100)
    _age(store, a, 20)
    _age(store, b, 10)
    c = _put(store, b"c" * 100, pinned={a})  # a is older but pinned: b goes
    assert store.missing([a, b, c]) == [b] and store.total_bytes == 200
    with pytest.raises(StoreFull, match="blobs of queued and running jobs stay"):
        _put(store, b"d" * 100, pinned={a, c})
    assert store.missing([a, c]) == [] and sorted(p.name for p in tmp_path.iterdir()) == sorted([a, c])
    reopened = BlobStore(tmp_path, store.limits)
    assert reopened.total_bytes == 200


def test_a_mismatch_or_an_oversized_blob_stores_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, Limits(max_blob_bytes=10, max_total_bytes=100))
    with pytest.raises(StoreFull, match="exceeds the host's cap of 10 bytes"):
        store.begin("0" * 64, 11)
    upload = store.begin("0" * 64, 3)
    upload.write(b"abc")
    with pytest.raises(BlobMismatch) as exc:
        upload.finish(set())
    assert exc.value.field == "header.blob.sha256"
    upload = store.begin(hashlib.sha256(b"abc").hexdigest(), 3)
    with pytest.raises(BlobMismatch, match="more data than the 3 bytes declared"):
        upload.write(b"abcd")
    upload.abort()
    assert list(tmp_path.iterdir()) == []
