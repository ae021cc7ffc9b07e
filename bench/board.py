"""What the nurse's ward board costs, against the same page for an empty ward, measured in the same run.

    .venv/bin/python -m bench.board

On a throwaway database (bench.common.setup_django) three wards are written in bulk
(tests/scheduling/mar/builders.py): empty, 30 and 120 patients on IL-2 spread over the board's states. A signed-in
nurse's GET /wards/{code}/ is timed with Django's test client: warm-up, then interleaved repeats, median of each. The
empty ward's page is the baseline: the same view, middleware, session and template with no row (a handful of queries).

Bars: the board for 30 patients costs at most 10 × the empty page; for 120 patients at most 4.5 × the board for 30
(linear would be 4 ×; the query count is the same at every size, tests/scheduling/mar/test_board.py).
"""

import statistics
import sys
import time

from bench.common import Figure, figure, setup_django

REPEATS = 25
SIZES = {"bench-empty": 0, "bench-30": 30, "bench-120": 120}


def _build():
    from django.utils import timezone

    from il2ward.services import staff_upsert, ward_upsert
    from tests.scheduling.mar.builders import populate_ward

    now = timezone.now()
    wards = {code: ward_upsert(code=code, name=f"Board {code}", tz="America/Chicago", now=now) for code in SIZES}
    nurse = staff_upsert(
        username="board-nurse", role="nurse", password="bench-password-1", ward_codes=list(SIZES), now=now
    )
    oncologist = staff_upsert(
        username="board-onc", role="oncologist", password="bench-password-1", ward_codes=[], now=now
    )
    for code, size in SIZES.items():
        if size and not wards[code].patients.exists():
            populate_ward(wards[code], patients=size, now=now, oncologist=oncologist, nurse=nurse)
    return nurse


def _medians(client, urls: list[str], repeats: int) -> dict[str, float]:
    for url in urls:  # warm-up: templates compiled, connections open
        for _ in range(3):
            assert client.get(url).status_code == 200, url
    timings: dict[str, list[float]] = {url: [] for url in urls}
    for _ in range(repeats):
        for url in urls:  # interleaved, so drift hits every page alike
            start = time.perf_counter()
            response = client.get(url)
            timings[url].append(time.perf_counter() - start)
            assert response.status_code == 200, url
    return {url: statistics.median(values) for url, values in timings.items()}


def run() -> list[Figure]:
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    nurse = _build()
    client = Client()
    client.force_login(nurse)
    urls = [f"/wards/{code}/" for code in SIZES]
    medians = _medians(client, urls, REPEATS)
    queries = {}
    for url in urls:
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        queries[url] = len(captured)
    empty, b30, b120 = (medians[url] for url in urls)
    note = f"{connection.vendor}, median of {REPEATS}; queries " + "/".join(str(queries[url]) for url in urls)
    return [
        figure("ward board, 30 patients vs the empty ward's page", b30, empty, 10, strict=False, note=note),
        figure("ward board, 120 patients vs 30 patients", b120, b30, 4.5, strict=False),
    ]


def main() -> int:
    from bench.__main__ import table

    figures = run()
    print(table(figures))
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
