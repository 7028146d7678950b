"""The chaos run's negative control: xxgk's own tasks and app, but Celery's default delivery.

``celery -A bench.simweb.celery_default_acks worker …`` runs exactly the tasks of
``worker.app`` with the two settings the project changes for at-least-once delivery put back
to Celery's defaults: the message is acknowledged when a worker *receives* it
(``acks_late=False``) and a worker lost mid-task does not hand it back
(``reject_on_worker_lost=False``). Run without beat, so without the SQL sweep, this is the
configuration the chaos run must catch losing pages — or the harness cannot see loss.
"""

from __future__ import annotations

from worker.tasks.base import PipelineTask

PipelineTask.acks_late = False
PipelineTask.reject_on_worker_lost = False

from worker.app import create_celery_app  # noqa: E402 - after the class attributes are changed

app = create_celery_app()
app.conf.update(task_acks_late=False, task_reject_on_worker_lost=False)
