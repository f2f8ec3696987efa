"""`nba batch`: decide for a whole customer base at once, on Dask.

    stage      module      where
    plan       source.py   driver: the input split into partitions (JSON-lines byte
                           ranges, Parquet row groups), and the manifest that pins them
    decide     decide.py   workers: each compiles the rule set once (a worker plugin) and
                           decides one partition per task, history read in bulk
    write      sink.py     workers: one output file per partition, renamed into place when
                           whole: the checkpoint a rerun resumes from
    run        run.py      driver: the cluster, the tasks, progress, the bad-record limit

A partition is the unit of work, of retry (Dask reschedules the task of a lost worker)
and of resumption (a rerun skips partitions whose output exists).
"""

from __future__ import annotations

from nba.errors import NbaError


class BatchError(NbaError, RuntimeError):
    """A batch run that cannot start or had to stop; the message says why and what to do."""
