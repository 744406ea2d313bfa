"""The README and docs/ render: every relative link and image resolves, anchors included; the
README stays a front door; `make docs` rewrites its tables from a report."""
import re
import sys

import pytest

from .conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The page without its code blocks and inline code, where brackets are not links."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))


def anchors(page) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def links(page) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text()))
            if not re.match(r"[a-z]+:", target)]  # http:, https:, mailto: are not ours to check


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page):
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{page.relative_to(ROOT)}: {target}: no such heading"


def test_the_checker_catches_a_broken_link_and_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nSee [a](missing.md), [b](#nowhere) and [c](#title); `[d](code.md)`.\n")
    found = links(page)
    assert found == ["missing.md", "#nowhere", "#title"]
    assert not (tmp_path / "missing.md").exists() and "nowhere" not in anchors(page) and "title" in anchors(page)


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "make repro" in text and "make test" in text
    shown = [target for target in links(ROOT / "README.md") if target.endswith((".png", ".gif"))]
    assert len(shown) >= 4
    for image in shown:
        assert image.startswith("docs/images/"), image
        assert (ROOT / image).stat().st_size < 150 * 1024, f"{image} is not small"
    # Every page of docs/ is reachable from the README.
    assert {p.name for p in PAGES[1:]} <= {t.rpartition("/")[2] for t in links(ROOT / "README.md")}


def test_make_docs_tables_come_from_the_report(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "docs"))
    import refresh

    report = tmp_path / "comparison.md"
    report.write_text("# Titanic loss study\n\nintro\n\n"
                      "| variant | mean val acc | 95% CI | sd | diff vs reference | p (Holm) | verdict | diagnoses |\n"
                      "|---|---|---|---|---|---|---|---|\n"
                      "| a | 0.800 | [0.7, 0.9] | 0.1 | +0.000 | n/a | reference | ok 4/4 |\n"
                      "| b | 0.500 | [0.4, 0.6] | 0.1 | -0.300 | 0.010 | worse | diverging 4/4 |\n\n"
                      "Differences:\n\n- **worse**: b\n\nChampion: a\n")
    readme = tmp_path / "README.md"
    readme.write_text("top\n<!-- results:begin -->\nold\n<!-- results:end -->\nbottom\n")
    monkeypatch.setattr(refresh, "ROOT", tmp_path)
    refresh.replace_between_markers(readme, "results", refresh.results_table(report, refresh.COLUMNS[:1] + (
        "verdict", "diagnoses")))
    assert readme.read_text() == ("top\n<!-- results:begin -->\n| variant | verdict | diagnoses |\n|---|---|---|\n"
                                  "| a | reference | ok 4/4 |\n| b | worse | diverging 4/4 |\n"
                                  "<!-- results:end -->\nbottom\n")
    with pytest.raises(SystemExit, match="no <!-- study:begin -->"):
        refresh.replace_between_markers(readme, "study", "x")
    # What the report says after its table, word for word, the champion first.
    assert refresh.conclusion(report) == "Champion: a\n\nDifferences:\n\n- **worse**: b"
