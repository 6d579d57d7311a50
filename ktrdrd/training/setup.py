"""Wiring: the training host pool, the ``train`` and ``train.batch`` kinds, the service.

``training = install(core, links, models, cache_of, load_missing, state_dir)`` (before pending
operations resume, so interrupted runs re-attach) registers both kinds and returns
:class:`Training`: ``training.service`` (TrainingService), ``training.pool`` (run ``pool.run()``
in the background) and ``training.resumers`` (for ``ResumeOperation``).

Daemon-side files live under ``<state dir>/training/``: ``placements/`` (where each running
operation's job is), ``reuse/`` (which request made which model), ``scratch/`` (downloads before
registration).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ktrdrd.hostjobs.placements import Placements
from ktrdrd.hostjobs.pool import HostPool
from ktrdrd.hosts.link import HostLink
from ktrdrd.operations import OperationRecord, OperationsCore
from ktrdrd.training import batch, kind
from ktrdrd.training.reuse import ReuseIndex
from ktrdrd.training.service import TrainingService, resume_train

Resumer = Callable[[OperationRecord, str], Awaitable[OperationRecord]]


@dataclass
class Training:
    service: TrainingService
    pool: HostPool
    resumers: dict[str, Resumer]


def install(
    core: OperationsCore,
    links: Mapping[str, HostLink],
    models: Any,
    cache_of: Callable[[], Awaitable[Any]],
    load_missing: kind.Loader | None,
    state_dir: Path,
) -> Training:
    root = state_dir / "training"
    pool = HostPool(links)
    deps = kind.TrainingDeps(
        pool=pool,
        placements=Placements(root / "placements"),
        models=models,
        cache_of=cache_of,
        load_missing=load_missing,
        scratch=root / "scratch",
        reuse=ReuseIndex(root / "reuse"),
    )
    core.register_kind(kind.KIND, kind.TrainKind(deps))
    core.register_kind(batch.KIND, batch.BatchKind(core))
    return Training(
        service=TrainingService(core, has_hosts=bool(links)),
        pool=pool,
        resumers={kind.KIND: partial(resume_train, core)},
    )
