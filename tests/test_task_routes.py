"""Which queue each task goes to (il2ward/settings.py, CELERY_TASK_ROUTES): the beat's periodic tasks on `sweeps`, the
sends on `deliveries`, the bulk work on `celery`. The routes name tasks by string, so a renamed task would silently
fall back to the default queue; these tests catch that."""

from django.conf import settings

from il2ward.celery import app
from il2ward.notifications import DELIVER_TASK
from scheduling.task_names import EVALUATE_PATIENT, GENERATE_CALENDAR, SWEEP


def queue_of(name: str) -> str:
    app.loader.import_default_modules()
    return app.amqp.router.route({}, name, (), {})["queue"].name


def registered() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_beat_task_goes_to_the_sweeps_queue():
    registered()  # finalizes the app, which declares the beat schedule (il2ward/celery.py)
    schedule = app.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == {
        SWEEP,
        "il2ward.deliveries_sweep",
        "il2ward.audit_checkpoint",
        "il2ward.api_tokens_purge",
    }
    assert {queue_of(entry["task"]) for entry in schedule.values()} == {"sweeps"}


def test_the_charting_work_stays_on_the_default_queue_and_the_sends_have_their_own():
    assert queue_of(EVALUATE_PATIENT) == "celery"
    assert queue_of(GENERATE_CALENDAR) == "celery"
    assert queue_of(DELIVER_TASK) == "deliveries"
    assert settings.CELERY_TASK_DEFAULT_QUEUE == "celery"


def test_every_route_names_a_registered_task_and_a_declared_queue():
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert set(settings.CELERY_TASK_ROUTES) <= registered()
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} <= declared
    assert {queue_of(name) for name in registered()} == declared  # every queue has work, every task a queue


def test_each_queue_is_bound_by_its_own_routing_key():
    """A queue declared without its own key gets Celery's default "celery", and a message to one reaches all three."""
    keys = {queue.name: (queue.exchange.name, queue.routing_key) for queue in settings.CELERY_TASK_QUEUES}
    assert keys == {name: (name, name) for name in ("celery", "sweeps", "deliveries")}
