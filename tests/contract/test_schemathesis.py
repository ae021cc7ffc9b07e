"""schemathesis over the whole published schema, against a live server on the test database, as a nurse and as an
oncologist: no 5xx, every response matches its schema, its status code and its content type are documented.

Two runs per persona. The first fuzzes every operation from the schema as published (examples and fuzzing:
IL2WARD_FUZZ_EXAMPLES per operation, default 4). The second is the stateful phase alone: scenarios that follow the
schema's OpenAPI links (IL2WARD_FUZZ_SCENARIOS, default 30, of up to 10 steps), given what a ward's client knows and
a fuzzer cannot guess (a config file, as schemathesis recommends: the ward's code, a patient and doses to start
from, a first dose inside the allowed range), so the walk gets past the first 400 into patient → course and dose →
course → doses → evaluate / administer / hold → dose. Both: a fixed seed, no shrinking. The counts are printed
(pytest -s) and kept in test-artifacts/.
"""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.contract.conftest import served_schema

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
EXAMPLES = os.environ.get("IL2WARD_FUZZ_EXAMPLES", "4")
PHASES = os.environ.get("IL2WARD_FUZZ_PHASES", "examples,fuzzing")  # + coverage for a deeper local run
SCENARIOS = int(os.environ.get("IL2WARD_FUZZ_SCENARIOS", "30"))  # the stateful run's; 0 skips it
STEPS = 10  # patient → patient read → course → course read → doses → evaluate → administer → dose → ...
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)  # ids from 1: the fuzzer finds rows


def run_schemathesis(
    base_url: str, token: str, schema_file: Path, report: Path, *, phases: str = PHASES, config: Path | None = None
) -> subprocess.CompletedProcess:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st), *(["--config-file", str(config)] if config else []), "run", str(schema_file), "--url", base_url,
        "--header", f"Authorization: Token {token}",
        # Logging out would revoke the fuzzer's own token and leave it nothing but 401s (tested in test_api_tokens).
        "--exclude-operation-id", "auth_logout", "--exclude-operation-id", "auth_logout_all",
        "--checks", CHECKS,
        "--phases", phases,
        "--max-examples", EXAMPLES, "--seed", "15", "--no-shrink",
        "--workers", "1", "--request-timeout", "30",
        "--generation-database", "none", "--suppress-health-check", "all",
        "--report", "ndjson", "--report-ndjson-path", str(report),
        "--no-color",
    ]  # fmt: skip
    return subprocess.run(command, cwd=report.parent, capture_output=True, text=True, timeout=300, check=False)


def stateful_config(ward, patient_id: int, doses: list[int], path: Path) -> Path:
    """What the stateful run is told: the ward's code (a new patient is admitted to it), a first dose an hour from
    now at a plausible weight (a new course starts), and the ward's patient and doses for the operations a scenario
    may start with (a scenario that starts at a random id ends at its 404; from a real dose a nurse, who may not
    start courses, walks to its course, the course's doses and their charting). The rest is generated."""
    first_dose = (timezone.now() + timedelta(hours=1)).isoformat()
    path.write_text(
        f"""
[phases.stateful]
max-steps = {STEPS}

[phases.stateful.generation]
max-examples = {SCENARIOS}
mode = "positive"  # bad input is the first run's job; here each step should feed the next

[phases.stateful.inference]
algorithms = []  # only the schema's own links: inferred ones add roots with random ids that end at a 404

[[operations]]
include-operation-id = "patients_create"
parameters = {{ "body.ward" = "{ward.code}", "body.birth_date" = "1970-01-01" }}

[[operations]]
include-operation-id = "courses_create"
[operations.parameters]
"body.first_dose_at" = "{first_dose}"
"body.dosing_weight_kg" = "80.0"
"body.baseline_weight_kg" = "80.0"
"body.dosing_weight_source" = "actual"

[[operations]]
include-operation-id = "dose_evaluate"
parameters = {{ "path.id" = {doses[0]} }}

[[operations]]
include-operation-id = "dose_hold"
parameters = {{ "path.id" = {doses[1]} }}

[[operations]]
include-operation-id = "patient_vitals_record"
parameters = {{ "path.id" = {patient_id} }}
"""
    )
    return path


def summarise(report: Path) -> dict:
    """Operations exercised, requests sent, statuses seen and failed checks by kind, from the NDJSON event log; for
    a stateful run also the links followed (source operation → target operation, as the cases' parents show)."""
    operations, statuses, failures, transitions = set(), Counter(), Counter(), Counter()
    requests = 0
    for line in report.read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if not event or event["status"] == "skip":
            continue
        recorder = event["recorder"]
        cases = recorder.get("cases", {})
        for case_id, interaction in recorder.get("interactions", {}).items():
            requests += 1
            case = cases.get(case_id, {}).get("value", {})
            operations.add(f"{case.get('method')} {case.get('path')}")  # the path as templated in the schema
            statuses[interaction["response"]["status_code"] if interaction.get("response") else "none"] += 1
        for node in cases.values():
            # "<source> -> [<status>] <link name> -> <target>", applied: its extracted values were used
            if node.get("transition") and node.get("is_transition_applied"):
                transitions[node["transition"]["id"]] += 1
        for checks in recorder.get("checks", {}).values():
            for check in checks:
                if check["status"] == "failure":
                    failures[check["name"]] += 1
    return {
        "operations": len({o for o in operations if " /" in o}),
        "requests": requests,
        "statuses": dict(sorted(statuses.items(), key=str)),
        "failures": dict(failures),
        **({"links_followed": dict(transitions.most_common())} if transitions else {}),
    }


def links_covered(output: str) -> dict:
    """schemathesis' own count of the links its stateful phase covered ("API Links: 13 covered / 120 selected / 120
    total (91 inferred)")."""
    found = re.search(r"API Links:\s+(\d+) covered / (\d+) selected / (\d+) total(?: \((\d+) inferred\))?", output)
    if not found:
        return {}
    covered, selected, total, inferred = (int(g or 0) for g in found.groups())
    return {"covered": covered, "selected": selected, "total": total, "inferred": inferred}


@pytest.mark.parametrize("username", ["nurse_a", "onc"])
def test_the_whole_schema_holds_under_schemathesis(username, contract_ward, live_server, tmp_path):
    token = contract_ward.tokens[username]
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(served_schema(live_server.url, token)))
    ARTIFACTS.mkdir(exist_ok=True)

    report = tmp_path / "events.ndjson"
    result = run_schemathesis(live_server.url, token, schema_file, report)
    (ARTIFACTS / f"schemathesis-{username}.txt").write_text(result.stdout + result.stderr)
    counts = summarise(report)
    print(f"schemathesis as {username}: {json.dumps(counts)}")
    assert counts["operations"] >= 45 and counts["requests"] > 150, counts  # it really ran over the schema
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]

    if SCENARIOS:
        doses = list(contract_ward.course.doses.order_by("due_at").values_list("pk", flat=True)[:2])
        config = stateful_config(contract_ward.ward, contract_ward.patient.pk, doses, tmp_path / "schemathesis.toml")
        report = tmp_path / "stateful.ndjson"
        result = run_schemathesis(live_server.url, token, schema_file, report, phases="stateful", config=config)
        (ARTIFACTS / f"schemathesis-{username}-stateful.txt").write_text(result.stdout + result.stderr)
        counts["stateful"] = {**summarise(report), "links": links_covered(result.stdout)}
        print(f"schemathesis stateful as {username}: {json.dumps(counts['stateful'])}")
        followed = {
            t.split(" -> ")[0] + " → " + t.split(" -> ")[-1] for t in counts["stateful"].get("links_followed", {})
        }
        # the walk went patient → course, dose → its course, and from a dose to its charting and back
        assert "POST /api/v1/patients/ → POST /api/v1/courses/" in followed, followed
        assert "GET /api/v1/doses/{id}/ → GET /api/v1/courses/{id}/" in followed, followed
        assert "POST /api/v1/doses/{id}/evaluate/ → GET /api/v1/doses/{id}/" in followed, followed
        assert {"POST /api/v1/doses/{id}/evaluate/ → POST /api/v1/doses/{id}/administer/",
                "POST /api/v1/doses/{id}/evaluate/ → POST /api/v1/doses/{id}/hold/"} & followed, followed  # fmt: skip
        assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
    (ARTIFACTS / f"schemathesis-{username}.json").write_text(json.dumps(counts, indent=2))
