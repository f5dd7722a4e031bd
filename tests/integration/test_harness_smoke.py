import pytest

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_worker_starts_on_the_test_database(services, broker):
    worker = services.worker()
    assert worker.running
    worker.kill()
    assert not worker.running
