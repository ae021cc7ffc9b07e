"""The engine against its HOLD-RULES v1 version on random patients (scripts/engine_diff.py): every difference is one
that version 2 of the specification asked for, and a change the specification did not ask for is caught."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring.domain.rulesets import CONSENSUS_2014, LABEL_ONLY
from tests.workers import skip_or_fail

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "engine_diff.py"
V1_ENGINE = "76c2c24"  # the last commit whose engine followed HOLD-RULES version 1


@pytest.fixture(scope="module")
def engine_diff():
    known = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{V1_ENGINE}^{{commit}}"], capture_output=True)
    if known.returncode:
        skip_or_fail(f"the git history with commit {V1_ENGINE} is not here (a shallow or exported tree)")
    spec = importlib.util.spec_from_file_location("engine_diff", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_difference_from_the_v1_engine_is_one_the_v2_specification_asked_for(engine_diff):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--against", V1_ENGINE, "--examples", "1500", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unexpected: 0" in done.stdout
    # The comparison really exercised the v2 rows: each of these changed some decisions.
    for cause in ("CV-RHYTHM", "RS-SPO2", "RS-O2", "NE-RASS", "HP-TRANS", "INV-EXPLICIT +vitals", "RN-UO -urine_8h"):
        assert f"consensus-2014  {cause}" in done.stdout, cause


def test_a_change_the_specification_did_not_ask_for_is_caught(engine_diff, capsys):
    planted = CONSENSUS_2014.with_overrides({"CV-SBP.hold_below": 95}, version=99)
    assert engine_diff.run(V1_ENGINE, 400, 7, current_sets=(planted, LABEL_ONLY)) == 1
    out = capsys.readouterr().out
    assert "CV-SBP [] -> ['hold']" in out


def test_an_unknown_revision_is_an_error_not_a_pass(engine_diff, capsys):
    assert engine_diff.run("no-such-revision", 10, 1) == 1
