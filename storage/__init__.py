"""Storage of wsad-hpo; knows nothing about physics. One concept per module:

* ``addresses`` -- the text rules of storage URLs (a leaf: no Optuna import);
* ``urls`` -- ``open_storage(url)``: a journal file or PostgreSQL as an Optuna storage;
* ``journal`` -- check and repair journal files (torn tails, bad lines);
* ``postgres`` -- engine options, connection errors, schema upgrade;
* ``leases`` -- liveness of running trials, stale-trial recovery, re-queueing;
* ``artifacts`` -- the artifact store of a run; ``errors`` -- ``StorageError``.
"""
