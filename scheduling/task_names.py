"""The scheduling app's Celery task names: the tasks (tasks.py) register under them and the services enqueue by them,
so a name is written once (the services cannot import tasks.py, which imports them)."""

GENERATE_CALENDAR = "scheduling.generate_calendar"
EVALUATE_PATIENT = "scheduling.evaluate_patient"
SWEEP = "scheduling.sweep"
