"""What monitoring tells the apps above it, without importing them (the layers point down, towards il2ward)."""

from django.dispatch import Signal

# Sent by every observation service inside its writing transaction, with `patient_id`: the patient's data changed.
# A receiver that starts work (the scheduling app re-evaluates the open dose) defers it to commit.
patient_observations_changed = Signal()
