"""The campaign reference, ``docs/campaign.md``, printed from the validation rules.

Every field's rule text (the one its error message uses), default and description come
from :mod:`hpo.config` (``SCHEMA``, ``DESCRIPTIONS``), so the page cannot drift from what
``hpo validate`` checks; ``tests/test_docs.py`` fails when the committed page differs.
Regenerate after changing a field::

    python -m hpo.config_doc > docs/campaign.md
"""

from __future__ import annotations

import json
from typing import Any

from hpo.config import DESCRIPTIONS, DM_FIELDS, LHCO_FIELDS, SCHEMA

__all__ = ["REGENERATE", "missing_descriptions", "render"]

#: The one command that rewrites the page.
REGENERATE = ".venv/bin/python -m hpo.config_doc > docs/campaign.md"


def _fields(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names)


_INTRO = f"""\
# Campaign reference

<!-- Generated from hpo/config.py (SCHEMA, DESCRIPTIONS) by
     `{REGENERATE}`. Do not edit by hand. -->

A campaign is one TOML file. `hpo validate` checks every field below against its rule
(the "must be" column is the text its error message uses) before any study, data file or
trial exists, and so does every other command. Unknown sections and fields are rejected
with the list of valid ones. An error is one line, `hpo: error: <file>: <section.field>:
<what>`, and exit code 2.

Examples: `examples/quickstart.toml` (commented, synthetic data, the
[README](../README.md#one-campaign-explained) walks through it); `examples/paper_lhco.toml`
(the paper's full grid on the real LHCO files: 3 classifiers × IAD/CWoLa/CATHODE ×
rotation × 14 signal amounts, 100 random-search trials, 10 repetitions);
`examples/cluster.toml` (PostgreSQL + SLURM); `examples/density.toml` (CATHODE with a
trained flow, ANODE, R-ANODE and the background flow's own study, small flows);
`examples/bumphunt.toml` (the bump hunt); `examples/darkmachines.toml` (the unsupervised
detectors, commented).

Defaults: *required* means the field must be given; `campaign.seed` means the
campaign's seed; *unset* means the field is absent unless given (its description says
what that means). With `data.source = "darkmachines"`, `grid.classifiers` defaults to
every unsupervised detector and baseline that applies, `search.metrics` to every metric
of those methods (label-free first) and `search.objective` to `val_loss`.
"""

_SECTIONS = {
    "campaign": "Name, outputs, storage.",
    "data": (
        "Where the events come from ([data.md](data.md)). The LHCO fields "
        f'({_fields(LHCO_FIELDS)}) are refused with `source = "darkmachines"`, the '
        f"DarkMachines fields ({_fields(DM_FIELDS)}) with the other sources. Every data "
        "file is checked before the first trial."
    ),
    "grid": (
        "Each combination is a cell and an Optuna study: classifier × mode × rotation × "
        "signal amount × feature set (× window)."
    ),
    "search": (
        "How each cell's study is searched ([search.md](search.md)). Each method declares "
        "its own search space (the built-ins' in `objectives/builtins.py`; `hpo methods` "
        "prints them)."
    ),
    "final": "The final runs on the exported hyperparameters (`hpo final`).",
    "slurm": "The SLURM chain that `hpo launch` submits ([slurm.md](slurm.md)).",
    "bumphunt": (
        "Optional: the section adds the sliding-window bump hunt "
        "([bumphunt.md](bumphunt.md)); it needs a classifier in `grid.classifiers`."
    ),
    "report": (
        "Optional: the style and label of every figure `hpo report` and `hpo bumphunt` "
        "draw (PNG and PDF), with mplhep's styles ([cli.md](cli.md#figures))."
    ),
}


def _toml(value: Any) -> str:
    """A default as the TOML a user would write."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _default(value: Any) -> str:
    if value == "REQUIRED":
        return "*required*"
    if value == "CAMPAIGN_SEED":
        return "`campaign.seed`"
    if value is None:
        return "*unset*"
    return f"`{_toml(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def missing_descriptions() -> list[str]:
    """Dotted fields of SCHEMA without a description, and descriptions of no field."""
    have = {f"{s}.{f}" for s, fields in DESCRIPTIONS.items() for f in fields}
    need = {f"{s}.{f}" for s, fields in SCHEMA.items() for f in fields}
    return sorted(need ^ have)


def render() -> str:
    """The page's text. ValueError when a field lacks its description."""
    odd = missing_descriptions()
    if odd:
        raise ValueError(
            "hpo/config.py: DESCRIPTIONS must describe exactly the fields of SCHEMA; "
            "add or remove: " + ", ".join(odd)
        )
    parts = [_INTRO]
    for section, fields in SCHEMA.items():
        intro = _SECTIONS.get(section)
        parts.append(f"\n## [{section}]\n\n" + (f"{intro}\n\n" if intro else ""))
        parts.append("| field | default | must be | what it does |\n| --- | --- | --- | --- |\n")
        for name, ((_check, expected), default) in fields.items():
            text = DESCRIPTIONS[section][name]
            parts.append(f"| `{name}` | {_cell(_default(default))} | {_cell(expected)} | ")
            parts.append(f"{_cell(text)} |\n")
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
