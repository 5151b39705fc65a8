"""The documentation: the campaign reference matches the rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo import config, config_doc

REPO = Path(__file__).resolve().parents[1]
CAMPAIGN_PAGE = REPO / "docs" / "campaign.md"


def test_campaign_reference_is_current():
    assert CAMPAIGN_PAGE.read_text() == config_doc.render(), (
        f"docs/campaign.md differs from the rules in hpo/config.py; regenerate it: "
        f"{config_doc.REGENERATE}"
    )


def test_every_field_has_a_description():
    assert config_doc.missing_descriptions() == [], (
        "describe each field in hpo/config.py DESCRIPTIONS, then run " + config_doc.REGENERATE
    )


def test_a_new_field_shows_on_the_page(monkeypatch):
    """What the two tests above guard against: a field added to the rules alone."""
    rule = config._rule(lambda v: isinstance(v, bool), "true or false")
    monkeypatch.setitem(
        config.SCHEMA, "final", {**config.SCHEMA["final"], "newfield": (rule, True)}
    )
    with pytest.raises(ValueError, match=r"add or remove: final\.newfield"):
        config_doc.render()
    described = {**config.DESCRIPTIONS["final"], "newfield": "A field added for this test."}
    monkeypatch.setitem(config.DESCRIPTIONS, "final", described)
    page = config_doc.render()
    assert "| `newfield` | `true` | true or false | A field added for this test. |" in page
    assert page != CAMPAIGN_PAGE.read_text()
