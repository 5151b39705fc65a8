"""Storage of wsad-hpo; knows nothing about physics. One concept per module:

* ``addresses`` -- the text rules of storage URLs (a leaf: no Optuna import);
* ``urls`` -- ``open_storage(url)``: a journal file or PostgreSQL as an Optuna storage;
* ``journal`` -- check and repair journal files (torn tails, bad lines);
* ``postgres`` -- engine options, connection errors, schema upgrade;
* ``leases`` -- liveness of running trials, stale-trial recovery, re-queueing;
* ``counts`` -- a study's trials by state, counted by the database;
* ``proxy`` -- Optuna's gRPC storage proxy (server and worker client);
* ``deaf`` -- threads that take no signals (a stop signal reaches the main thread);
* ``artifacts`` -- the artifact store of a run; ``errors`` -- ``StorageError``.
"""
