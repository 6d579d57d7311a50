"""Running jobs on hosts (training hosts now, backtests later): placement and the job's RPCs.

- :mod:`.pool`: :class:`~.pool.HostPool`, the links to the hosts that take jobs, their slots and the
  daemon's queue of jobs waiting for one (with each job's position, or why it waits).
- :mod:`.dispatch`: one job on one host, generic over ``JobKind``: upload only the blobs the host
  lacks, start, follow its events (from any ``after_seq``), cancel, read, download artifacts.
- :mod:`.placements`: where each operation's job runs (host, job id), kept on disk so that a
  restarted daemon re-attaches to it.
"""
