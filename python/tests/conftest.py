"""Fixtures of the Python suite: heaps with names no other test (or run) uses, removed after."""

import itertools
import os

import pytest

import shmetrics

_counter = itertools.count()


def unique_name(tag="t"):
    return f"pytest-{tag}-{os.getpid()}-{next(_counter)}"


@pytest.fixture(autouse=True)
def _no_worker_attachment_outlives_a_test():
    """A test that made this process a worker (by attaching, or by unpickling a heap) must not
    leave it one: the next test's forked children would re-attach to that heap."""
    yield
    from shmetrics import _pickling
    if _pickling._attached is not None:
        _pickling._attached.detach_worker()
    _pickling._heaps.clear()
    _pickling._registries.clear()


@pytest.fixture(autouse=True)
def _fresh_forkserver():
    """multiprocessing's forkserver lives as long as the test process and its children get the
    environment it started with: each test that uses it gets one started in its own."""
    yield
    import multiprocessing.forkserver
    multiprocessing.forkserver._forkserver._stop()


@pytest.fixture
def heap_name():
    name = unique_name()
    yield name
    try:
        shmetrics.Heap.remove(name)
    except shmetrics.NotFoundError:
        pass


@pytest.fixture
def heap(heap_name):
    return shmetrics.Heap.create(heap_name, max_size=64 << 20)


@pytest.fixture
def registry(heap):
    return shmetrics.Registry(heap, read_environment=False)
