"""The Celery application Flower runs with in test_flower_buttons.py: celeryapp's, plus a stub named demo.add.

Flower's rate-limit and time-limit buttons refuse a task its own application does not know ("Unknown task"), and
demo.add lives only in Swift workers: as in any Flower watching Swift workers, a stub of the same name makes the
buttons work. The stub never runs: no Celery worker uses this module."""
from celeryapp import app


@app.task(name="demo.add")
def add(x, y):
    raise NotImplementedError("demo.add runs in Swift workers; this stub only tells Flower the name")
