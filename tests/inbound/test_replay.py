"""The sample feed replays onto the demo ward: every message answered, the expected two refused, the corrected
panel kept as entered-in-error, and Maria Lopez's creatinine holds her next dose."""

from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from fixtures import demo
from il2ward.models import Patient
from inbound.models import InboundMessage
from monitoring.models import LabResult, VitalSigns
from scheduling.services import patient_evaluate_next_dose
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def test_the_demo_day_replays_and_changes_the_board(settings):
    with time_machine.travel(NOW, tick=False):
        demo.load(now=NOW)
        maria = Patient.objects.get(mrn="DEMO-001")
        assert patient_evaluate_next_dose(patient_id=maria.pk, now=NOW).decision == "give"
        out = StringIO()
        call_command("hl7_replay", "fixtures/hl7/demo-day.hl7", stdout=out)
        assert out.getvalue().split("\n")[:3] == ["   73  AA", "    1  AE unknown_code", "    1  AE unknown_patient"]
        assert VitalSigns.objects.filter(source_system="MONITOR").count() == 66
        assert LabResult.objects.filter(source_system="LAB").count() == 7  # 6 panels and 1 correction
        assert LabResult.objects.filter(source_system="LAB", entered_in_error_at__isnull=False).count() == 1
        evaluation = patient_evaluate_next_dose(patient_id=maria.pk, now=NOW)  # what the worker does on commit
        assert evaluation.decision == "hold"
        assert "RN-CREAT" in {f["rule"] for f in evaluation.findings}
        again = StringIO()
        call_command("hl7_replay", "fixtures/hl7/demo-day.hl7", stdout=again)  # the same minute: duplicates
        assert "   73  AA duplicate" in again.getvalue()
        assert InboundMessage.objects.count() == 75
