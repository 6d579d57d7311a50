"""The registry's files: reading a model directory to register, copying it in, scanning, removing.

Every function here is blocking file work: the registry calls them through ``asyncio.to_thread``.

Layout under the registry root (``<state_dir>/models``)::

    <strategy>/<version>/   weights.pt strategy.json feature_spec.json metrics.json manifest.json
    .staging/<random>/      a copy being made, or a deleted version being removed

A version directory is complete from the moment it has its name: it is built under ``.staging``,
every file and the directory fsynced, then renamed into place (one ``rename``), and the parent
fsynced. Whatever ``.staging`` holds when the registry opens is left over from a crash and removed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktrdr.research.modeldir import FILES, FORMAT

STAGING = ".staging"
#: A strategy name usable as a directory and inside resource names ("models/<strategy>").
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Bytes copied per read while staging.
_COPY_BYTES = 1024 * 1024
#: Splits whose report keys become flat metrics, and the keys taken from each.
_SPLITS = ("train", "validation", "test")
_SPLIT_KEYS = ("samples", "accuracy", "baseline_accuracy", "persistence_accuracy", "loss", "macro_f1")
_SKILL_KEYS = ("mean_return", "ci_low", "ci_high")
_TRAINING_KEYS = ("epochs_trained", "best_epoch", "samples_per_s")


class SourceError(ValueError):
    """A directory that cannot be registered; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Source:
    """What the catalog keeps about a model directory (read once, when it is registered)."""

    strategy: str
    size_bytes: int
    metrics: dict[str, float]
    manifest: dict[str, Any]
    strategy_normalized: dict[str, Any]
    feature_names: list[str]


def name_problem(strategy: str) -> str:
    """Why ``strategy`` cannot name a model ("" when it can): the train operation checks it first."""
    if NAME_PATTERN.fullmatch(strategy):
        return ""
    return (
        f"strategy name {strategy[:60]!r} cannot name a model: use 1 to 128 letters, digits, '.', '_' "
        "or '-', starting with a letter or digit"
    )


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceError(f"{path}: unreadable: {exc}") from None


def key_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The flat numbers lists and comparisons show, from a ``metrics.json``: ``test.accuracy``,
    ``test.baseline_accuracy``, ``test.persistence_accuracy``, ``test.skill.mean_return``,
    ``test.skill.significant`` (1 or 0), ``training.epochs_trained``, … (absent values left out)."""
    out: dict[str, float] = {}
    evaluation = metrics.get("evaluation") or {}
    for split in _SPLITS:
        report = evaluation.get(split) or {}
        for key in _SPLIT_KEYS:
            _put(out, f"{split}.{key}", report.get(key))
        skill = report.get("skill") or {}
        for key in _SKILL_KEYS:
            _put(out, f"{split}.skill.{key}", skill.get(key))
        if isinstance(skill.get("significant"), bool):
            out[f"{split}.skill.significant"] = float(skill["significant"])
    training = metrics.get("training") or {}
    for key in _TRAINING_KEYS:
        _put(out, f"training.{key}", training.get(key))
    return out


def _put(out: dict[str, float], key: str, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        out[key] = float(value)


def read_source(source: Path) -> Source:
    """Check that ``source`` is a complete model directory (:mod:`ktrdr.research.modeldir`) and read
    its records. Raises :class:`SourceError` naming the first problem."""
    if not source.is_dir():
        raise SourceError(f"{source}: not a directory")
    size = 0
    for name in FILES:
        try:
            info = os.lstat(source / name)
        except OSError as exc:
            raise SourceError(f"{source}: not a model directory: {name}: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"{source / name}: not a regular file")
        size += info.st_size
    manifest = _json(source / "manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise SourceError(f"{source / 'manifest.json'}: format {got!r}, expected {FORMAT!r}")
    strategy = _json(source / "strategy.json")
    strategy_name = strategy.get("name") if isinstance(strategy, dict) else None
    if not isinstance(strategy_name, str):
        raise SourceError(f"{source / 'strategy.json'}: no strategy name")
    problem = name_problem(strategy_name)
    if problem:
        raise SourceError(f"{source / 'strategy.json'}: {problem}")
    spec = _json(source / "feature_spec.json")
    try:
        features = [str(column["name"]) for column in spec["columns"]]
    except (KeyError, TypeError) as exc:
        raise SourceError(f"{source / 'feature_spec.json'}: no column names ({exc})") from None
    metrics = _json(source / "metrics.json")
    if not isinstance(metrics, dict):
        raise SourceError(f"{source / 'metrics.json'}: expected a JSON object")
    return Source(strategy_name, size, key_metrics(metrics), manifest, strategy, features)


def fsync_dir(directory: Path) -> None:
    """Flush ``directory``'s entries (a new file, a rename) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage(root: Path, source: Path) -> Path:
    """Copy the model files of ``source`` into a new directory under ``root/.staging``, every file and
    the directory fsynced; returns it. Removed again if anything fails."""
    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / uuid.uuid4().hex
    target.mkdir()
    try:
        for name in FILES:
            with open(source / name, "rb") as src, open(target / name, "wb") as dst:
                while chunk := src.read(_COPY_BYTES):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        fsync_dir(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def place(staged: Path, destination: Path) -> None:
    """Rename the staged copy to ``destination`` (``<root>/<strategy>/<version>``) and fsync both
    parents. ``FileExistsError`` if ``destination`` exists (a version number is never reused)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        raise FileExistsError(f"{destination} exists already")
    os.rename(staged, destination)
    fsync_dir(destination.parent)
    fsync_dir(staged.parent)


def remove(root: Path, directory: Path) -> None:
    """Remove a version directory: renamed into ``.staging`` first (one step; a crash leaves only
    staging garbage), then deleted."""
    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    doomed = staging / f"deleted-{uuid.uuid4().hex}"
    try:
        os.rename(directory, doomed)
    except FileNotFoundError:
        return
    fsync_dir(directory.parent)
    shutil.rmtree(doomed, ignore_errors=True)


def scan(root: Path) -> tuple[list[tuple[str, int]], list[Path]]:
    """The version directories under ``root`` as ``(strategy, version)``, and every other entry
    (staging leftovers, stray names) as paths to remove."""
    versions: list[tuple[str, int]] = []
    stray: list[Path] = []
    if not root.is_dir():
        return versions, stray
    for strategy_dir in sorted(root.iterdir()):
        if strategy_dir.name == STAGING:
            stray.extend(sorted(strategy_dir.iterdir()))
            continue
        if not strategy_dir.is_dir() or not NAME_PATTERN.fullmatch(strategy_dir.name):
            continue  # not ours: left alone
        for version_dir in sorted(strategy_dir.iterdir()):
            if version_dir.name.isdigit() and version_dir.is_dir():
                versions.append((strategy_dir.name, int(version_dir.name)))
    return versions, stray


def remove_paths(paths: list[Path]) -> None:
    """Delete each path (directory trees included); missing ones are fine."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def read_report(directory: Path) -> dict[str, Any]:
    """The version's ``metrics.json`` (training history and evaluation reports)."""
    report = _json(directory / "metrics.json")
    return report if isinstance(report, dict) else {}


def class_names(report: dict[str, Any]) -> list[str]:
    """The classes in confusion-matrix order: the order of a split's ``per_class`` keys as written
    (the trainer writes them in class-id order)."""
    for split in reversed(_SPLITS):
        per_class = ((report.get("evaluation") or {}).get(split) or {}).get("per_class")
        if isinstance(per_class, dict) and per_class:
            return [str(name) for name in per_class]
    return []
