from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"

    def ready(self) -> None:
        from il2ward.notifications import register_work_done
        from il2ward.tasking import run_here_when_broker_down
        from monitoring.signals import patient_observations_changed
        from scheduling.services.reminders import work_done
        from scheduling.task_names import EVALUATE_PATIENT

        patient_observations_changed.connect(_evaluate_patient_after_commit, dispatch_uid="scheduling.evaluate")
        # No sweep re-finds an open slot's re-evaluation after new data: a deferred publish the broker refuses is
        # run in the publishing process instead (the HL7 listener's, il2ward.tasking).
        run_here_when_broker_down(EVALUATE_PATIENT)
        register_work_done(work_done)


def _evaluate_patient_after_commit(sender, *, patient_id: int, **kwargs) -> None:
    """New data for a patient: re-evaluate the next open dose once the data is committed (patient id only)."""
    from il2ward.tasking import enqueue_on_commit
    from scheduling.task_names import EVALUATE_PATIENT

    enqueue_on_commit(EVALUATE_PATIENT, patient_id)
