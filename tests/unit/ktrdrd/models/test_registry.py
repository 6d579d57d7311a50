"""ModelRegistry over a real journal and real files: numbering, atomic placement, reconcile on
open, refusals that change nothing; the export archive's chunks; the training-curve plot.

Model directories here are written by hand in the format of ktrdr.research.artifacts (the
registry reads their JSON records and copies the weights as bytes; it never loads torch)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from ktrdr.research.modeldir import FILES, FORMAT
from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode
from ktrdrd.journal import Journal
from ktrdrd.models import ModelRegistry, RegistrationError, export, plot
from ktrdrd.models.files import STAGING

REPORT = {
    "training": {
        "history": {"train_loss": [1.0, 0.8], "val_loss": [0.9, 0.85], "train_accuracy": [0.5, 0.6], "val_accuracy": [0.55, 0.6]},
        "epochs_trained": 2,
        "best_epoch": None,
    },
    "evaluation": {
        split: {"samples": 10, "accuracy": 0.6, "baseline_accuracy": 0.7, "persistence_accuracy": 0.65,
                "per_class": {"buy": {}, "hold": {}, "sell": {}},
                "skill": {"mean_return": 0.001, "significant": False}}
        for split in ("train", "validation", "test")
    },
}  # fmt: skip


def model_dir(base: Path, name: str = "nmr", weights: bytes = b"w" * 100, report: dict | None = None) -> Path:
    d = base / f"src-{len(list(base.glob('src-*')))}"
    d.mkdir()
    (d / "weights.pt").write_bytes(weights)
    (d / "strategy.json").write_text(json.dumps({"name": name}))
    (d / "feature_spec.json").write_text(
        json.dumps({"columns": [{"name": "1h_rsi_low"}, {"name": "1h_rsi_high"}]})
    )
    (d / "metrics.json").write_text(json.dumps(report if report is not None else REPORT))
    (d / "manifest.json").write_text(json.dumps({"format": FORMAT, "seed": 7}))
    return d


def run(coro_fn, tmp_path: Path):
    async def main():
        journal = await Journal.open(tmp_path / "ktrdr.db")
        try:
            registry = await ModelRegistry.open(tmp_path / "models", journal)
            return await coro_fn(registry)
        finally:
            await journal.close()

    return asyncio.run(main())


def test_versions_are_numbered_copied_and_listed_newest_first(tmp_path: Path) -> None:
    sources = [model_dir(tmp_path, weights=bytes([i]) * 1000) for i in range(3)]

    async def scenario(registry: ModelRegistry):
        records = [await registry.register(s, operation=f"operations/op_{i}") for i, s in enumerate(sources)]
        page = await registry.list_versions("nmr", before=2**62, limit=2)
        rest = await registry.list_versions("nmr", before=page[-1].version, limit=2)
        return records, page, rest

    records, page, rest = run(scenario, tmp_path)
    assert [r.version for r in records] == [1, 2, 3] and [r.version for r in page + rest] == [3, 2, 1]
    assert records[0].metrics["test.accuracy"] == 0.6 and records[0].metrics["test.skill.significant"] == 0.0
    assert (
        records[0].feature_names == ["1h_rsi_low", "1h_rsi_high"]
        and records[2].operation == "operations/op_2"
    )
    for record, source in zip(records, sources, strict=True):
        stored = tmp_path / "models" / "nmr" / str(record.version)
        assert all((stored / f).read_bytes() == (source / f).read_bytes() for f in FILES)
        assert record.size_bytes == sum((source / f).stat().st_size for f in FILES)
    assert not any((tmp_path / "models" / STAGING).iterdir())


def test_reconcile_removes_half_versions_and_forgets_rows_without_files(tmp_path: Path) -> None:
    source = model_dir(tmp_path)
    run(lambda registry: registry.register(source), tmp_path)
    root = tmp_path / "models"
    (root / "nmr" / "5").mkdir()  # placed, row never written
    (root / STAGING / "abc").mkdir()  # a copy interrupted
    (root / "nmr" / "1").rename(tmp_path / "lost")  # a row whose files are gone

    async def scenario(registry: ModelRegistry):
        with pytest.raises(ApiError) as info:
            await registry.get_model("nmr")
        return info.value, await registry.register(source)

    error, again = run(scenario, tmp_path)
    assert error.code == StatusCode.NOT_FOUND and "model 'nmr'" in error.message
    assert again.version == 2  # numbers are never given twice
    assert sorted(p.name for p in (root / "nmr").iterdir()) == ["2"] and not any((root / STAGING).iterdir())


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d: (d / "weights.pt").unlink(), "weights.pt"),
        (lambda d: (d / "manifest.json").write_text('{"format": "other"}'), "format 'other'"),
        (lambda d: (d / "strategy.json").write_text('{"name": "../etc"}'), "cannot name a model"),
        (lambda d: (d / "metrics.json").write_text("{"), "metrics.json: unreadable"),
    ],
)
def test_a_bad_directory_is_refused_and_changes_nothing(tmp_path: Path, spoil, message: str) -> None:
    source = model_dir(tmp_path)
    spoil(source)

    async def scenario(registry: ModelRegistry):
        with pytest.raises(RegistrationError) as info:
            await registry.register(source)
        return info.value, await registry.list_models()

    error, models = run(scenario, tmp_path)
    assert message in str(error) and models == []
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) in ([], [STAGING])
    with contextlib.closing(sqlite3.connect(tmp_path / "ktrdr.db")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM models").fetchone() == (0,)


def test_aliases_block_deletion_until_moved(tmp_path: Path) -> None:
    sources = [model_dir(tmp_path), model_dir(tmp_path)]

    async def scenario(registry: ModelRegistry):
        for s in sources:
            await registry.register(s)
        await registry.set_alias("nmr", "champion", 1)
        with pytest.raises(ApiError) as refused:
            await registry.delete_version("nmr", 1)
        moved = await registry.set_alias("nmr", "champion", 2)
        await registry.delete_version("nmr", 1)
        with pytest.raises(ApiError) as missing:
            await registry.set_alias("nmr", "x", 1)
        return refused.value, moved, missing.value

    refused, moved, missing = run(scenario, tmp_path)
    assert refused.code == StatusCode.FAILED_PRECONDITION and "champion" in refused.message
    assert moved.aliases == {"champion": 2} and moved.version_count == 2
    assert missing.code == StatusCode.NOT_FOUND and missing.message == "version 1 of model 'nmr' not found"
    assert not (tmp_path / "models" / "nmr" / "1").exists()


def test_export_streams_a_tar_in_bounded_chunks(tmp_path: Path) -> None:
    weights = bytes(range(256)) * (10 * 1024)  # 2.5 MiB
    source = model_dir(tmp_path, weights=weights)
    archive = export.plan(source, "nmr-v1")
    pieces = list(export.chunks(archive))
    assert all(len(p) <= export.CHUNK_BYTES for p in pieces) and len(pieces) == 3
    data = b"".join(pieces)
    assert len(data) == archive.total_bytes
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == [f"nmr-v1/{f}" for f in FILES]
        assert tar.extractfile("nmr-v1/weights.pt").read() == weights


def test_plot_is_a_png_and_needs_a_history() -> None:
    png = plot.render_png(REPORT, "nmr v1", 400, 300)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(plot.NoHistory):
        plot.render_png({"training": {"history": {}}}, "x", 400, 300)
