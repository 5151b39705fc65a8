"""Worker ids unique across processes and hosts (issue 26 §4): no shared seed, no shared log.

Two ``hpo run C -w 1`` at once both named their worker ``local-0``: the same TPE seed,
so 8 COMPLETE trials held 4 distinct parameter sets, and one ``logs/worker-0.log``.
"""

from __future__ import annotations

import os
import socket

from workers.ids import unique_worker_id, worker_label


def test_ids_name_the_host_and_process_and_never_repeat(monkeypatch):
    ids = {unique_worker_id("local-0") for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith(f"local-0@{socket.gethostname()}-{os.getpid()}-") for i in ids)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert worker_label() == "slurm-41_3"
