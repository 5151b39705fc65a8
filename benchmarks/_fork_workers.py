"""Start N no-op worker processes as children of one process, forked after the imports.

512 separate interpreters need ~15 GB and minutes of CPU only to import Optuna on a
2-core machine; forked children share the imported modules (copy-on-write) and start at
once. Each child is a separate process running ``tests/_noop_worker.py``'s ``main`` with
its own argv (``{i}`` replaced by its index), log file and storage connection (opened
after the fork: no gRPC channel or database connection exists before it).

Usage: python benchmarks/_fork_workers.py --n N --log PATTERN --codes FILE [--nice K]
           [--stagger S] -- NOOP-ARGS...
``{i}`` in PATTERN and NOOP-ARGS is the child's index. ``--stagger S``: child i starts
S * i / N seconds after the first (an array whose tasks start over S seconds). Writes the
children's exit codes (in index order) to FILE as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import _noop_worker  # noqa: E402  (imports optuna, grpc, the storage and the worker loop)

import storage.proxy  # noqa: E402, F401


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--codes", type=Path, required=True)
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--stagger", type=float, default=0.0)
    parser.add_argument("noop", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    template = args.noop[1:] if args.noop[:1] == ["--"] else args.noop
    gc.freeze()  # keep the shared pages shared: the collector would touch every object
    pids = []
    for i in range(args.n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.nice(args.nice)
                time.sleep(args.stagger * i / args.n)
                log = args.log.replace("{i}", str(i))
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                code = _noop_worker.main([a.replace("{i}", str(i)) for a in template])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    codes = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        codes.append(os.waitstatus_to_exitcode(status))
    args.codes.write_text(json.dumps(codes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
