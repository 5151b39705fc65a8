"""A worker process for tests and benchmarks: run_worker with a no-op/sleep objective.

Usage: python tests/_noop_worker.py (--storage URL | --proxy-file PATH) --study NAME --target N
       --worker-id ID [--token-file PATH]
       [--sleep S] [--fail MESSAGE] [--lease-interval S] [--lease-expiry S] [--poll S]
       [--summary PATH] [--storage-patience S]
The objective suggests x in [0, 1) and returns x after sleeping ``--sleep`` seconds in
short steps with a safe point after each, as a training loop has one after each epoch
(or raises RuntimeError(MESSAGE) with ``--fail``). The summary JSON holds the worker's
counts, its per-trial overheads and the best trial it reads at exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zlib
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.urls import open_storage  # noqa: E402
from workers.signals import safe_point  # noqa: E402
from workers.worker import run_worker  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--storage")
    where.add_argument("--proxy-file", type=Path, help="a storage proxy's address file")
    parser.add_argument("--study", required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail", default=None)
    parser.add_argument("--lease-interval", type=float, default=1.0)
    parser.add_argument("--lease-expiry", type=float, default=3.0)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--summary", type=Path, default=None)
    parser.add_argument("--storage-patience", type=float, default=300.0)
    parser.add_argument("--token-file", type=Path, default=None, help="a proxy's token")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        print(f"START {trial.number}", flush=True)
        if args.fail:
            raise RuntimeError(args.fail)
        end = time.monotonic() + args.sleep
        while time.monotonic() < end:  # "training": a safe point after every short step
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
            safe_point()
        return x

    seed = zlib.crc32(args.worker_id.encode())
    if args.proxy_file is not None or args.storage.startswith("grpc://"):
        from storage.proxy import ProxyStorage  # a crowd of workers may wait a while

        storage = ProxyStorage(
            args.storage, address_file=args.proxy_file, token_file=args.token_file
        )
        storage.wait_ready(args.storage_patience)
    else:
        storage = open_storage(args.storage)
    summary = run_worker(
        storage,
        {args.study: args.target},
        objective,
        sampler_factory=lambda name: optuna.samplers.RandomSampler(seed=seed),
        worker_id=args.worker_id,
        poll=args.poll,
        lease_interval=args.lease_interval,
        lease_expiry=args.lease_expiry,
        storage_patience=args.storage_patience,
    )
    if args.summary is not None:
        study = optuna.load_study(study_name=args.study, storage=storage)
        try:
            best = [study.best_trial.number, study.best_value]
        except ValueError:
            best = None
        record = {
            "worker_id": args.worker_id,
            "completed": summary.completed,
            "failed": summary.failed,
            "surplus": summary.surplus,
            "recovered": summary.recovered,
            "exit_code": summary.exit_code,
            "message": summary.message,
            "overhead_s": summary.overhead_s,
            "best": best,
        }
        args.summary.write_text(json.dumps(record))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
