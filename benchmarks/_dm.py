"""Shared set-up of the unsupervised benchmarks: the synthetic DarkMachines set and its arrays."""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def dm_spec(scale: float = 1.0, seed: int = 0, test_fraction: float = 0.5):
    """The ``DMDataSpec`` of the synthetic DarkMachines set of this scale (written once).

    Scale 1: 200k background events, 20k per signal (6 signals); events cached in
    ``benchmarks/out/dm-events`` after the first parse.
    """
    from objectives.darkmachines import DMSyntheticSpec, write_synthetic_darkmachines
    from objectives.darkmachines.cells import DMDataSpec

    paths = write_synthetic_darkmachines(DMSyntheticSpec(scale=scale, seed=seed), OUT / "dm-data")
    signals = tuple((n, p) for n, p in paths.items() if n != "background")
    return DMDataSpec(
        paths["background"],
        signals,
        synthetic=True,
        test_fraction=test_fraction,
        seed=seed,
        cache_dir=OUT / "dm-events",
    )


def train_val_test(spec, n_train: int, n_val: int, seed: int = 0):
    """(train, val, test, test_signal, signals): disjoint random background draws from the
    pool for train / val, and the cell's test set (held-out background and every signal)."""
    import numpy as np

    from objectives.darkmachines.cells import load_sets
    from objectives.unsupervised import EventArrays

    sets = load_sets(spec)
    pool = EventArrays.from_events(sets.train)
    if n_train + n_val > len(pool):
        raise SystemExit(f"--n-train + --n-val = {n_train + n_val} > {len(pool)} pool events")
    order = np.random.default_rng(seed).permutation(len(pool))
    train, val = pool.take(order[:n_train]), pool.take(order[n_train : n_train + n_val])
    test = EventArrays.from_events(sets.test)
    return train, val, test, sets.test_signal, sets.signals


def trial_hps(method: str, n: int, seed: int, epochs: int) -> list[dict]:
    """A search as a campaign runs it: the defaults first (``{}``), then ``n - 1`` random
    draws from the method's search space (``hpo.spaces``); ``epochs`` fixed for all
    (DROCC: warm-up ``min(2, epochs - 1)``). A DDD draw is one distortion point."""
    import optuna

    from hpo.spaces import SEARCH_SPACES, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    hps: list[dict] = [{}]
    for _ in range(n - 1):
        trial = study.ask()
        hps.append(suggest(trial, SEARCH_SPACES[method]))
        study.tell(trial, 0.0)
    for hp in hps:
        hp["epochs"] = epochs
        if method == "DROCC":
            hp["only_ce_epochs"] = min(2, epochs - 1)
    return hps
