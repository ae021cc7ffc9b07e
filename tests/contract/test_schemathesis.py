"""schemathesis over the whole published schema, against a live server on the test database, as a nurse and as an
oncologist: no 5xx, every response matches its schema, its status code and its content type are documented.

Bounded for CI (IL2WARD_FUZZ_EXAMPLES per operation, default 4; a fixed seed; no shrinking). The run's counts are
printed (pytest -s shows them) and kept in test-artifacts/.
"""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.contract.conftest import served_schema

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
EXAMPLES = os.environ.get("IL2WARD_FUZZ_EXAMPLES", "4")
PHASES = os.environ.get("IL2WARD_FUZZ_PHASES", "examples,fuzzing,stateful")  # + coverage for a deeper local run
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)  # ids from 1: the fuzzer finds rows


def run_schemathesis(base_url: str, token: str, schema_file: Path, report: Path) -> subprocess.CompletedProcess:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st), "run", str(schema_file), "--url", base_url,
        "--header", f"Authorization: Token {token}",
        # Logging out would revoke the fuzzer's own token and leave it nothing but 401s (tested in test_api_tokens).
        "--exclude-operation-id", "auth_logout", "--exclude-operation-id", "auth_logout_all",
        "--checks", CHECKS,
        "--phases", PHASES,
        "--max-examples", EXAMPLES, "--seed", "15", "--no-shrink",
        "--workers", "1", "--request-timeout", "30",
        "--generation-database", "none", "--suppress-health-check", "all",
        "--report", "ndjson", "--report-ndjson-path", str(report),
        "--no-color",
    ]  # fmt: skip
    return subprocess.run(command, cwd=report.parent, capture_output=True, text=True, timeout=300, check=False)


def summarise(report: Path) -> dict:
    """Operations exercised, requests sent, statuses seen and failed checks by kind, from the NDJSON event log."""
    operations, statuses, failures = set(), Counter(), Counter()
    requests = 0
    for line in report.read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if not event or event["status"] == "skip":
            continue
        recorder = event["recorder"]
        for interaction in recorder.get("interactions", {}).values():
            requests += 1
            operations.add(recorder["label"] if " " in recorder["label"] else interaction["request"]["method"])
            statuses[interaction["response"]["status_code"] if interaction.get("response") else "none"] += 1
        for checks in recorder.get("checks", {}).values():
            for check in checks:
                if check["status"] == "failure":
                    failures[check["name"]] += 1
    return {
        "operations": len({o for o in operations if " /" in o}),
        "requests": requests,
        "statuses": dict(sorted(statuses.items(), key=str)),
        "failures": dict(failures),
    }


@pytest.mark.parametrize("username", ["nurse_a", "onc"])
def test_the_whole_schema_holds_under_schemathesis(username, contract_ward, live_server, tmp_path):
    token = contract_ward.tokens[username]
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(served_schema(live_server.url, token)))
    report = tmp_path / "events.ndjson"
    result = run_schemathesis(live_server.url, token, schema_file, report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"schemathesis-{username}.txt").write_text(result.stdout + result.stderr)
    counts = summarise(report)
    (ARTIFACTS / f"schemathesis-{username}.json").write_text(json.dumps(counts, indent=2))
    print(f"schemathesis as {username}: {json.dumps(counts)}")
    assert counts["operations"] >= 45 and counts["requests"] > 150, counts  # it really ran over the schema
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
