"""``hpo methods``: every method this environment can see, as a user needs to know it.

Built-in methods, then each installed package's (entry points of ``wsad_hpo.methods``),
then any ``"module:attribute"`` named on the command line: family, modes, metrics and
their directions, hyperparameters with their search and final defaults, search ranges,
whether it trains on a device, and where it came from. A method that cannot be loaded is
listed with its one-line error instead of stopping the listing.

Example:
    >>> rows = catalog(["HGB"])  # doctest: +SKIP
    >>> rows[0]["family"], rows[0]["hyperparameters"]["max_iter"]["search"]  # doctest: +SKIP
    ('classifier', {'type': 'int', 'low': 2, 'high': 199, 'log': False})
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["catalog", "format_json", "format_text"]


def _entry(method) -> dict[str, Any]:
    from hpo.spaces import as_data, check_space
    from objectives.errors import MethodError
    from objectives.registry import origin

    try:
        space = check_space(method)
        problem = None
    except MethodError as exc:
        space, problem = {}, str(exc)
    search, final = method.default_hyperparameters(), method.default_hyperparameters(final=True)
    hps = {
        name: {
            "default": value,
            "final": final.get(name, value),
            "search": as_data(space[name]) if name in space else None,
            **(
                {"default_outside_space": method.defaults_outside_space[name]}
                if name in method.defaults_outside_space
                else {}
            ),
        }
        for name, value in search.items()
    }
    row = {
        "name": method.name,
        "family": method.family,
        "modes": list(method.modes),
        "metrics": dict(method.directions),
        "label_free": list(method.label_free),
        "oracles": list(method.oracles),
        "study_metrics": list(method.searched),
        "hyperparameters": hps,
        "device": method.device,
        "epoch_choice": method.epoch_choice,
        "can_ensemble": method.can_ensemble,
        "origin": origin(method.name).to_dict(),
    }
    if problem:
        row["error"] = problem
    return row


def catalog(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per method: every discoverable one, or only ``names`` (any form)."""
    from objectives.errors import HyperparameterError
    from objectives.registry import discover, get_method

    if names:
        found: dict[str, Any] = {}
        for name in names:
            try:
                found[name] = get_method(name)
            except HyperparameterError as exc:
                found[name] = exc
    else:
        found = dict(discover())
    return [
        {"name": name, "error": str(m)} if isinstance(m, Exception) else _entry(m)
        for name, m in found.items()
    ]


def format_json(rows: list[dict[str, Any]]) -> str:
    """The rows as JSON (what ``hpo methods --json`` prints)."""
    from objectives.files import json_safe

    return json.dumps(json_safe(rows), indent=2)


def _range(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "not searched"
    if entry["type"] == "categorical":
        return "one of " + ", ".join(map(repr, entry["choices"]))
    text = f"{entry['type']} [{entry['low']:g}, {entry['high']:g}]"
    return (
        text
        + (" log" if entry.get("log") else "")
        + (f" step {entry['step']:g}" if "step" in entry else "")
    )


def format_text(rows: list[dict[str, Any]]) -> str:
    """A block per method, readable in a terminal (what ``hpo methods`` prints)."""
    blocks = []
    for row in rows:
        if set(row) == {"name", "error"}:
            blocks.append(f"{row['name']}: cannot be used: {row['error']}")
            continue
        where = row["origin"]
        source = "built-in" if where["kind"] == "built-in" else where.get("target", "")
        if where.get("distribution"):
            source += f" ({where['distribution']} {where['version']})"
        elif where.get("file"):
            source += f" ({where['file']})"
        metrics = ", ".join(
            f"{m} ({'max' if d == 'maximize' else 'min'}{', truth' if m in row['oracles'] else ''})"
            for m, d in row["metrics"].items()
        )
        lines = [
            f"{row['name']}  [{row['family']}]  {source}",
            f"  modes:     {', '.join(row['modes'])}",
            f"  metrics:   {metrics}; studies record {', '.join(row['study_metrics'])}",
            f"  device:    {'search.device (torch)' if row['device'] else 'CPU'}"
            + (
                f"; averages its best epochs ({row['epoch_choice']})" if row["epoch_choice"] else ""
            ),
            "  hyperparameters (search default, final default if different, search range):",
        ]
        width = max((len(n) for n in row["hyperparameters"]), default=0)
        for name, hp in row["hyperparameters"].items():
            default = json.dumps(hp["default"])
            if hp["final"] != hp["default"]:
                default += f" / {json.dumps(hp['final'])}"
            note = " (default outside the range)" if "default_outside_space" in hp else ""
            lines.append(f"    {name:<{width}}  {default:<16} {_range(hp['search'])}{note}")
        if "error" in row:
            lines.append(f"  error:     {row['error']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
