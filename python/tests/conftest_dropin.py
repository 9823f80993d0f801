"""Fixtures and child-process targets of the shmetrics.prometheus_client tests (imported by the
test_prometheus_client*.py files; module-level functions so spawn and forkserver children can
unpickle them)."""

import itertools
import os

import pytest

import shmetrics
from shmetrics.prometheus_client import _heap

_count = itertools.count()


def unique_name(prefix="pc"):
    return f"{prefix}-{os.getpid()}-{next(_count)}"


@pytest.fixture
def heap(monkeypatch):
    """A fresh heap set as the drop-in's default (through SHMETRICS_HEAP, so spawned children
    find it too); removed afterwards."""
    name = unique_name()
    monkeypatch.setenv("SHMETRICS_HEAP", name)
    _heap._reset()
    try:
        yield _heap.get_heap()
    finally:
        _heap._reset()
        try:
            shmetrics.Heap.remove(name)
        except shmetrics.NotFoundError:
            pass


def samples_of(text, name, openmetrics=False):
    """{(sample name, sorted label pairs): value} of family `name`, parsed by prometheus_client."""
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# ---- child-process targets ----------------------------------------------------------------------


def count_in_child(n):
    """Creates the family by definition (heap from SHMETRICS_HEAP) and counts n."""
    from shmetrics.prometheus_client import Counter, Histogram

    c = Counter("jobs_total", "Jobs", ["kind"], registry=None)
    h = Histogram("job_seconds", "Job time", buckets=[1, 2], registry=None)
    for i in range(n):
        c.labels("a").inc()
        h.observe(i % 3)
    return os.getpid()


def count_pickled(child, family, n):
    """Counts n on a pickled child and n on a pickled family's child."""
    for _ in range(n):
        child.inc()
        family.labels("b").inc()
    return os.getpid()
