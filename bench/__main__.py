"""Run every benchmark module's run() and print one table: name, measured, ratio, bar, PASS/FAIL.

    .venv/bin/python -m bench                 # all modules but load
    .venv/bin/python -m bench evaluation      # only some
    .venv/bin/python -m bench load            # the load test (PostgreSQL, gunicorn, worker and beat; 2 min)
    .venv/bin/python -m bench hospital --minutes 0.2 --wards 4   # 40 wards × 30 patients, 80 nurses (bench.hospital)
    .venv/bin/python -m bench --json bench/results/$(git rev-parse --short HEAD).json   # the table, and as JSON
    .venv/bin/python -m bench --readme bench/results/abc1234.json   # README's table rewritten from results (no run)

Exit code 1 when any bar fails or a module crashes. Modules written by others (board, reminders, course_page) are run
when they exist. `--json PATH` writes every figure with the commit, the time, the database and the load average
before and after the run, so that runs of two commits can be compared; `--readme PATH...` rewrites the table between
README.md's `bench:table` markers from one or more such files (a later file's figure replaces an earlier one's).
"""

import importlib
import json
import os
import subprocess
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure, database_vendor, seconds_text, setup_django

MODULES = ("calendar", "evaluation", "board", "history", "reminders", "course_page", "hl7")
# Run only when named: they need PostgreSQL (and Redis) and take minutes. `load`: two minutes of 18 clients;
# `reminders_e2e`: the real chain (DATABASE_URL, IL2WARD_BENCH_REDIS_URL); `charting`: gunicorn at 1 and 8 nurses;
# `hospital`: 40 wards, 80 nurses (its own arguments after its name: --minutes, --wards, --patients, --nurses,
# --workers).
BY_NAME = ("load", "reminders_e2e", "charting", "hospital")
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- bench:table start -->", "<!-- bench:table end -->"


def _load(name: str):
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None  # not written (yet): nothing to run
        raise


def _options(argv: list[str]) -> tuple[list[str], str | None, list[str], list[str]]:
    """(module names, --json path, --readme paths, the hospital scenario's own arguments)."""
    names, json_path, readme, rest = [], None, [], []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--json":
            json_path = args.pop(0)
        elif arg == "--readme":
            while args and not args[0].startswith("--"):
                readme.append(args.pop(0))
        elif arg.startswith("--"):
            rest.append(arg)
            if args and not args[0].startswith("--"):
                rest.append(args.pop(0))
        else:
            names.append(arg)
    return names, json_path, readme, rest


def main(argv: list[str]) -> int:
    names, json_path, readme, rest = _options(argv)
    if readme:
        return write_readme(readme)
    names = names or list(MODULES)
    unknown = [n for n in names if n not in MODULES + BY_NAME]
    if unknown:
        print(f"unknown bench module(s): {', '.join(unknown)}; known: {', '.join(MODULES + BY_NAME)}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    started = datetime.now(UTC)
    commit = _commit()  # the code that runs is the code at the start (a commit made meanwhile is not measured)
    setup_django()
    figures: list[Figure] = []
    crashed: list[str] = []
    skipped: list[str] = []
    for name in names:
        try:
            module = _load(name)
            if module is None:
                skipped.append(name)
                continue
            print(f"running bench.{name} ...", file=sys.stderr, flush=True)
            found = module.run(rest) if name == "hospital" else module.run()
            figures += [(name, f) for f in found]
        except Exception:  # noqa: BLE001 - report every module, then fail
            crashed.append(name)
            traceback.print_exc()
    print(table([f for _, f in figures]))
    print(f"\ndatabase: {database_vendor()}" + (f"; not present: {', '.join(skipped)}" if skipped else ""))
    load_after = os.getloadavg()
    print(f"load average before {_load_text(load_before)}, after {_load_text(load_after)}")
    if crashed:
        print(f"CRASHED: {', '.join(crashed)}")
    if json_path:
        document = {
            "commit": commit,
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "database": database_vendor(),
            "load_average": {"before": list(load_before), "after": list(load_after)},
            "modules": names,
            "crashed": crashed,
            "figures": [as_json(module, f) for module, f in figures],
        }
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        print(f"written: {path}")
    return 1 if crashed or not all(passed(f) for _, f in figures) else 0


def _load_text(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def _commit() -> str:
    """HEAD's commit, with "+dirty" when the work tree has changes (the figures are then not that commit's)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                               text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def as_json(module: str, f) -> dict:
    """One figure as a JSON object (a Figure's fields; an information tuple as name, value, note, passed)."""
    if isinstance(f, Figure):
        return {
            "module": module, "name": f.name, "measured_s": f.measured, "baseline_s": f.baseline, "ratio": f.ratio,
            "bar": f.bar, "bar_text": f.bar_text, "strict": f.strict, "note": f.note, "passed": f.passed,
        }  # fmt: skip
    name, value, note = f[:3]
    return {"module": module, "name": name, "value": value, "note": note, "passed": bool(f[3]) if len(f) > 3 else None}


def readme_table(documents: list[dict]) -> str:
    """The README's benchmark table from result files: module, figure, measured, bar, result, commit."""
    rows: dict[tuple[str, str], tuple[dict, dict]] = {}
    for document in documents:
        for f in document["figures"]:
            rows[(f["module"], f["name"])] = (f, document)
    lines = ["| module | figure | measured | bar | result | run |", "|---|---|---|---|---|---|"]
    for (module, name), (f, document) in rows.items():
        if "ratio" in f:
            measured = f"{f['ratio']:.3g}× ({seconds_text(f['measured_s'])} vs {seconds_text(f['baseline_s'])})"
            bar = f["bar_text"]
        else:
            measured, bar = f"{f['value']:.4g}" + (f" ({f['note']})" if f["note"] else ""), ""
        result = {True: "PASS", False: "FAIL", None: "info"}[f["passed"]]
        run = f"{document['commit'][:9]}, {document['database']}, load {document['load_average']['before'][0]:.1f}"
        cells = [module, name.replace("|", "\\|"), measured.replace("|", "\\|"), bar, result, run]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_readme(paths: list[str], readme: Path = README) -> int:
    """Rewrite the table between README.md's markers from the result files `paths`."""
    documents = [json.loads(Path(p).read_text()) for p in paths]
    text = readme.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        print(f"{readme} has no {TABLE_START} … {TABLE_END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    readme.write_text(f"{head}{TABLE_START}\n{readme_table(documents)}\n{TABLE_END}{tail}")
    print(f"rewritten: {readme} ({sum(len(d['figures']) for d in documents)} figures)")
    return 0


def passed(f) -> bool:
    """A Figure judges itself; a (name, value, note, passed) tuple says; a 3-tuple is information only."""
    if isinstance(f, Figure):
        return f.passed
    return bool(f[3]) if len(f) > 3 else True


def table(figures: list) -> str:
    """Figures as rows. A tuple (name, value, note[, passed]) is shown as is (its unit is in its name or note)."""
    rows = [("figure", "measured", "baseline", "ratio", "bar", "result")]
    for f in figures:
        if not isinstance(f, Figure):
            name, value, note = f[:3]
            result = ("PASS" if f[3] else "FAIL") if len(f) > 3 else "info"
            rows.append((f"{name} ({note})" if note else name, f"{value:.4g}", "", "", "", result))
            continue
        rows.append(
            (
                f.name + (f" ({f.note})" if f.note else ""),
                seconds_text(f.measured),
                seconds_text(f.baseline),
                f"{f.ratio:.3g}×",
                f.bar_text,
                "PASS" if f.passed else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
