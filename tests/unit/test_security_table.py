"""The README's "Who can do what" table is the catalogue's ACLs, generated (topology.acls.access_table)."""
from __future__ import annotations

from pathlib import Path

from topology.acls import access_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_access_table_is_generated_from_the_catalogue():
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- access-table:start -->\n", "<!-- access-table:end -->"
    assert start in text and end in text, "the README lost its access-table markers"
    table = text.split(start, 1)[1].split(end, 1)[0]
    assert table == access_table(), ("README's access table differs from the catalogue: paste "
                                     "`python -c 'from topology.acls import access_table; print(access_table())'`")


def test_every_principal_of_the_catalogue_has_a_row():
    table = access_table()
    for principal in ("User:case-processor", "User:clinic", "User:identity", "User:lag-exporter", "User:payment",
                      "User:police", "User:portal", "User:province-<code>", "User:sre"):
        assert f"| `{principal}` |" in table
    assert "`cases.province.<code>` (`province-<code>`)" in table  # a province reads its own topic, in its group
