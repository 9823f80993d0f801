"""Fixtures of the Python suite: heaps with names no other test (or run) uses, removed after."""

import itertools
import os

import pytest

import shmetrics

_counter = itertools.count()


def unique_name(tag="t"):
    return f"pytest-{tag}-{os.getpid()}-{next(_counter)}"


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
