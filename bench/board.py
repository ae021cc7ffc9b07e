"""What the nurse's ward board costs, against the same page for an empty ward, measured in the same run.

    .venv/bin/python -m bench.board

On a throwaway database (bench.common.setup_django) three wards are written in bulk
(tests/scheduling/mar/builders.py): empty, 30 and 120 patients on IL-2 spread over the board's states, then ANALYZEd
on PostgreSQL (as autovacuum would after such a load). A signed-in
nurse's GET /wards/{code}/ is timed with Django's test client: warm-up, then interleaved repeats, median of each. The
empty ward's page is the baseline: the same view, middleware, session and template with no row (a handful of queries).

Bars: the board for 30 patients costs at most 10 × the empty page; for 120 patients at most 4.5 × the board for 30
(linear would be 4 ×; the query count is the same at every size, tests/scheduling/mar/test_board.py). Against the
trivial authenticated GET (bench.common.trivial_get), in the same interleaved run: the full page for 120 patients at
most 5 ×, and its 30 s poll when nothing changed (the ETag it holds, its rows' fingerprints: a 304) at most 1.5 ×;
a poll after one patient's row changed is shown beside them (information: the row, the summary, the order).
"""

import re
import statistics
import sys
import time

from bench.common import TRIVIAL_GET, Figure, figure, setup_django

REPEATS = 25
SIZES = {"bench-empty": 0, "bench-30": 30, "bench-120": 120}


def _build():
    from django.db import connection
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
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would after the bulk load: the planner sees the rows
    return nurse


def _medians(client, requests: dict[str, tuple[str, dict]], repeats: int) -> dict[str, float]:
    """Median seconds of each (url, headers) request, interleaved, so drift hits every request alike. A poll takes
    the ETag its answer gives, as the page does (il2ward.js): when the minute turns it gets that minute's rows once."""
    for url, headers in requests.values():  # warm-up: templates compiled, connections open
        for _ in range(3):
            assert client.get(url, **headers).status_code in (200, 304), url
    timings: dict[str, list[float]] = {name: [] for name in requests}
    for _ in range(repeats):
        for name, (url, headers) in requests.items():
            start = time.perf_counter()
            response = client.get(url, **headers)
            timings[name].append(time.perf_counter() - start)
            assert response.status_code in (200, 304), name
            if name == "poll" and response.get("ETag"):
                headers["HTTP_IF_NONE_MATCH"] = response["ETag"]
    return {name: statistics.median(values) for name, values in timings.items()}


def _poll_headers(client, url: str) -> dict:
    """The headers the board's page sends when it polls (il2ward/static/il2ward.js): its ETag and rows."""
    page = client.get(url)
    rows = re.findall(r'<tr id="board-row-(\d+)"[^>]*data-v="(\w+)"', page.content.decode())
    return {
        "HTTP_HX_REQUEST": "true",
        "HTTP_X_IL2WARD_POLL": "1",
        "HTTP_IF_NONE_MATCH": page.get("ETag", ""),
        "HTTP_X_IL2WARD_ROWS": " ".join(f"{pk}:{key}" for pk, key in rows),
    }


def _one_row_changed(headers: dict) -> dict:
    """The same poll from a page whose first row is out of date: the server sends that row alone."""
    rows = headers["HTTP_X_IL2WARD_ROWS"].split()
    first = rows[0].split(":")[0] + ":000000000000" if rows else ""
    return {**headers, "HTTP_IF_NONE_MATCH": 'W/"stale"', "HTTP_X_IL2WARD_ROWS": " ".join([first, *rows[1:]])}


def run() -> list[Figure]:
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    nurse = _build()
    client = Client()
    client.force_login(nurse)
    urls = [f"/wards/{code}/" for code in SIZES]
    poll = _poll_headers(client, urls[-1])
    requests = {url: (url, {}) for url in urls}
    requests |= {"trivial": (TRIVIAL_GET, {}), "poll": (urls[-1], poll), "poll1": (urls[-1], _one_row_changed(poll))}
    medians = _medians(client, requests, REPEATS)
    queries = {}
    for name, (url, headers) in requests.items():
        with CaptureQueriesContext(connection) as captured:
            client.get(url, **headers)
        queries[name] = len(captured)
    empty, b30, b120 = (medians[url] for url in urls)
    trivial = medians["trivial"]
    note = f"{connection.vendor}, median of {REPEATS}; queries " + "/".join(str(queries[url]) for url in urls)
    sizes = {}
    for name, (url, headers) in requests.items():
        response = client.get(url, **headers)
        sizes[name] = len(response.content)
        if name == "poll" and response.status_code == 200 and response.get("ETag"):  # the minute turned: once more
            requests[name][1]["HTTP_IF_NONE_MATCH"] = response["ETag"]
            with CaptureQueriesContext(connection) as captured:
                sizes[name] = len(client.get(url, **headers).content)
            queries[name] = len(captured)
    return [
        figure("ward board, 30 patients vs the empty ward's page", b30, empty, 10, strict=False, note=note),
        figure("ward board, 120 patients vs 30 patients", b120, b30, 4.5, strict=False),
        figure(
            "ward board, 120 patients, full page vs the trivial GET",
            b120,
            trivial,
            5,
            strict=False,
            note=f"{sizes[urls[-1]] // 1024} KB",
        ),
        figure(
            "ward board 120, unchanged poll vs the trivial GET",
            medians["poll"],
            trivial,
            1.5,
            strict=False,
            note=f"{queries['poll']} queries, {sizes['poll']} B",
        ),
        (
            "ward board 120, poll with one row changed ÷ the trivial GET",
            medians["poll1"] / trivial,
            f"{queries['poll1']} queries, {sizes['poll1'] // 1024} KB",
        ),
    ]


def main() -> int:
    from bench.__main__ import table

    figures = run()
    print(table(figures))
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
