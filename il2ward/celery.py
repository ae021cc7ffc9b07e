"""The Celery app. Exactly one beat runs; its schedule is declared here, in code."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "il2ward.settings")

app = Celery("il2ward")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def declare_beat_schedule(sender, **kwargs):
    from django.conf import settings

    every = settings.SWEEP_INTERVAL_SECONDS
    sender.conf.beat_schedule = {
        "scheduling-sweep": {"task": "scheduling.sweep", "schedule": every},
        # Resend what is still pending (lost messages, flushed Redis, killed workers, retries after backoff).
        "notifications-resend": {"task": "il2ward.deliveries_sweep", "schedule": every},
    }
