"""The documentation: the campaign reference matches the rules, every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpo import config, config_doc

REPO = Path(__file__).resolve().parents[1]
CAMPAIGN_PAGE = REPO / "docs" / "campaign.md"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


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
    # the error lists every undescribed field, sorted: final.newfield among them
    with pytest.raises(ValueError, match=r"add or remove: (\S+, )*final\.newfield(,|$)"):
        config_doc.render()
    described = {**config.DESCRIPTIONS["final"], "newfield": "A field added for this test."}
    monkeypatch.setitem(config.DESCRIPTIONS, "final", described)
    page = config_doc.render()
    assert "| `newfield` | `true` | true or false | A field added for this test. |" in page
    assert page != CAMPAIGN_PAGE.read_text()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but ``_`` dropped, spaces to
    hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text())):
        slug = _slug(heading)
        out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return out


def _links(page: Path) -> list[str]:
    text = _CODE.sub("", _FENCE.sub("", page.read_text()))
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z]+:", t)]


def test_slugs_follow_github():
    assert _slug("Select with an ARGOS floor") == "select-with-an-argos-floor"
    assert _slug("`[search]` pruning (3.1)") == "search-pruning-31"
    assert _slug("Storage, workers and fault tolerance") == "storage-workers-and-fault-tolerance"
    assert _slug("The metric `perturb_auc`") == "the-metric-perturb_auc"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(REPO)})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(REPO)})")
    assert not broken, f"{page.relative_to(REPO)}: broken links: " + "; ".join(broken)
