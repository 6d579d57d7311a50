"""Wiring: the training host pool, the ``train`` and ``train.batch`` kinds, the service.

``training = install(core, links, models, cache_of, load_missing, state_dir, auto_resumes)``
(before pending operations resume, so interrupted runs re-attach) registers both kinds and returns
:class:`Training`: ``training.service`` (TrainingService), ``training.pool`` (the hosts' slots),
``training.resumers`` (for ``ResumeOperation``); ``await training.run()`` in the background runs the
pool and the automatic resume of runs whose host was lost (:mod:`.autoresume`, at most
``auto_resumes`` times per run).

Daemon-side files live under ``<state dir>/training/``: ``placements/`` (where each running
operation's job is), ``reuse/`` (which request made which model), ``scratch/`` (downloads before
registration).
"""

from __future__ import annotations

import asyncio
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
from ktrdrd.training.autoresume import AutoResumer
from ktrdrd.training.reuse import ReuseIndex
from ktrdrd.training.service import TrainingService, resume_train

Resumer = Callable[[OperationRecord, str], Awaitable[OperationRecord]]


@dataclass
class Training:
    service: TrainingService
    pool: HostPool
    resumers: dict[str, Resumer]
    autoresume: AutoResumer

    async def run(self) -> None:
        """The pool and the automatic resume, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.pool.run(), name="training-hosts")
            group.create_task(self.autoresume.run(), name="training-auto-resume")


def install(
    core: OperationsCore,
    links: Mapping[str, HostLink],
    models: Any,
    cache_of: Callable[[], Awaitable[Any]],
    load_missing: kind.Loader | None,
    state_dir: Path,
    auto_resumes: int = 3,
) -> Training:
    root = state_dir / "training"
    pool = HostPool(links)
    placements = Placements(root / "placements")
    autoresume = AutoResumer(core, pool, placements, auto_resumes)
    deps = kind.TrainingDeps(
        pool=pool,
        placements=placements,
        models=models,
        cache_of=cache_of,
        load_missing=load_missing,
        scratch=root / "scratch",
        reuse=ReuseIndex(root / "reuse"),
        auto_resume_limit=auto_resumes,
        on_lost=autoresume.lost,
    )
    core.register_kind(kind.KIND, kind.TrainKind(deps))
    core.register_kind(batch.KIND, batch.BatchKind(core, auto_resumes))
    return Training(
        service=TrainingService(core, has_hosts=bool(links)),
        pool=pool,
        resumers={kind.KIND: partial(resume_train, core)},
        autoresume=autoresume,
    )
