"""docs/indicators.md's table is generated from the registry and must be current."""

from __future__ import annotations

from pathlib import Path

from ktrdr.tools import indicator_docs


def test_committed_indicator_table_is_current():
    assert indicator_docs.main(["--check"]) == 0


def test_check_names_a_stale_line_and_regeneration_fixes_it(tmp_path: Path, capsys):
    doc = tmp_path / "indicators.md"
    text = indicator_docs.DOC.read_text(encoding="utf-8")
    doc.write_text(text.replace("| `mfi` | money_flow_index |", "| `mfi` | m, f, i |"), encoding="utf-8")
    assert indicator_docs.main(["--check", "--doc", str(doc)]) == 1
    assert "stale; expected: | `mfi` | money_flow_index |" in capsys.readouterr().err
    assert indicator_docs.main(["--doc", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == text
