"""Run every benchmark module's run() and print one table: name, measured, ratio, bar, PASS/FAIL.

    .venv/bin/python -m bench                 # all modules but load
    .venv/bin/python -m bench evaluation      # only some
    .venv/bin/python -m bench load            # the load test (PostgreSQL, gunicorn, worker and beat; 2 min)

Exit code 1 when any bar fails or a module crashes. Modules written by others (board, reminders, course_page) are run
when they exist.
"""

import importlib
import sys
import traceback

from bench.common import Figure, database_vendor, seconds_text, setup_django

MODULES = ("calendar", "evaluation", "board", "reminders", "course_page", "hl7")
# Run only when named: they need PostgreSQL (and Redis) and take minutes. `load`: two minutes of 18 clients;
# `reminders_e2e`: the real chain (DATABASE_URL, IL2WARD_BENCH_REDIS_URL); `charting`: gunicorn at 1 and 8 nurses.
BY_NAME = ("load", "reminders_e2e", "charting")


def _load(name: str):
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None  # not written (yet): nothing to run
        raise


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    unknown = [n for n in names if n not in MODULES + BY_NAME]
    if unknown:
        print(f"unknown bench module(s): {', '.join(unknown)}; known: {', '.join(MODULES + BY_NAME)}", file=sys.stderr)
        return 2
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
            figures += module.run()
        except Exception:  # noqa: BLE001 - report every module, then fail
            crashed.append(name)
            traceback.print_exc()
    print(table(figures))
    print(f"\ndatabase: {database_vendor()}" + (f"; not present: {', '.join(skipped)}" if skipped else ""))
    if crashed:
        print(f"CRASHED: {', '.join(crashed)}")
    return 1 if crashed or not all(passed(f) for f in figures) else 0


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
