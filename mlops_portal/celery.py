"""The Celery app, and the errors its tasks retry. Periodic schedules live in
django-celery-beat (see the registry and monitoring migrations)."""

import os

from celery import Celery
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_portal.settings")

app = Celery("mlops_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

#: What a task retries: the database or the broker was unreachable, a connection dropped, a
#: deadlock or serialization failure (OperationalError). Never a programming error or bad data:
#: those fail the same way on every attempt, so they are recorded (a failed window or profile)
#: instead of retried.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseOperationalError,
    DatabaseInterfaceError,
    BrokerOperationalError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)
