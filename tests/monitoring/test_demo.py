"""``manage.py load_demo --sync``, as ``make run`` runs it, with real commits (so the on-commit
tasks run inline on their day): one load, checked for its story (``tests/demo_story.py``) and a
second run that changes nothing.

Marked ``demo_story``: ``make test`` runs it on SQLite; on PostgreSQL the demo tour
(``tests/browser/test_demo_tour.py``) loads the same demo and runs the same checks before it walks
the pages, so ``make test`` leaves this one out there and each database loads the demo once (one
load: about 50 s on SQLite and 100 s on PostgreSQL under the suite's load). Run on PostgreSQL by
hand, it passes there too."""

import pytest

from tests import demo_story

# real commits; the flush after a transactional test is let through the audit table's triggers
# (tests/conftest.py); the migrations' rows, emptied by an earlier one's flush, are restored
# at its start (serialized_rollback)
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.demo_story]


def test_the_demo_tells_its_story_on_its_days_and_a_second_run_changes_nothing(midday_clock):
    demo_story.assert_story(*demo_story.load())
    demo_story.assert_second_run_changes_nothing()
