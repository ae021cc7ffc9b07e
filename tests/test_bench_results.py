"""The bench's JSON results and the README table regenerated from them (bench/__main__.py); no benchmark is run."""

import json

from bench.__main__ import TABLE_END, TABLE_START, _options, as_json, write_readme
from bench.common import figure


def _document(commit, figures):
    return {
        "commit": commit,
        "database": "postgresql",
        "load_average": {"before": [3.5, 2.0, 1.0], "after": [4.0, 2.0, 1.0]},
        "figures": figures,
    }


def test_options_split_modules_json_readme_and_the_hospitals_own_arguments():
    assert _options(["history", "--json", "out.json"]) == (["history"], "out.json", [], [])
    assert _options(["--readme", "a.json", "b.json"]) == ([], None, ["a.json", "b.json"], [])
    assert _options(["hospital", "--minutes", "0.2", "--wards", "4"]) == (
        ["hospital"], None, [], ["--minutes", "0.2", "--wards", "4"]
    )  # fmt: skip


def test_the_table_between_the_markers_is_rewritten_and_nothing_else(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{TABLE_START}\nold | table\n{TABLE_END}\nafter\n")
    first = tmp_path / "a.json"
    second = tmp_path / "b.json"
    judged = figure("board: 800 vs 1", 0.9, 0.9, 1.2, strict=False, note="queries 14/14")
    first.write_text(
        json.dumps(_document("aaaaaaaaaaaa", [as_json("history", judged), as_json("load", ("errors", 2, "", False))]))
    )
    later = figure("board: 800 vs 1", 1.5, 1.0, 1.2, strict=False)
    second.write_text(json.dumps(_document("bbbbbbbbbbbb", [as_json("history", later)])))

    assert write_readme([str(first), str(second)], readme=readme) == 0

    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{TABLE_END}\nafter\n")
    assert "old | table" not in text
    rows = [line for line in text.splitlines() if line.startswith("| history") or line.startswith("| load")]
    # The later file's figure replaces the earlier one's (a failing 1.5×), the other figure stays.
    assert rows == [
        "| history | board: 800 vs 1 | 1.5× (1.50 s vs 1.00 s) | ≤ 1.2× | FAIL | bbbbbbbbb, postgresql, load 3.5 |",
        "| load | errors | 2 |  | FAIL | aaaaaaaaa, postgresql, load 3.5 |",
    ]


def test_a_readme_without_markers_is_left_alone(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    result = tmp_path / "a.json"
    result.write_text(json.dumps(_document("c", [])))

    assert write_readme([str(result)], readme=readme) == 2
    assert readme.read_text() == "no markers\n"
    assert "markers" in capsys.readouterr().err
