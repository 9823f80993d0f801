"""prometheus_client.multiprocess for the heap: MultiProcessCollector and mark_process_dead.

There are no per-process files: every process updates the heap, and one exposition reads it.
The usual multiprocess scrape code works unchanged::

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    data = generate_latest(registry)

with a drop-in CollectorRegistry as with a real prometheus_client one.
"""

from . import _heap
from .registry import HeapCollector


class MultiProcessCollector(HeapCollector):
    """Every family of the heap, every process's values, registered in `registry`: a drop-in
    CollectorRegistry (its exposition is then the whole heap's) or a real
    prometheus_client.CollectorRegistry (collect() yields prometheus_client Metric families).

    `path` (prometheus_client's directory of per-process files) is accepted and ignored: the
    heap is the default one (SHMETRICS_HEAP or set_heap()); RuntimeError when there is none."""

    def __init__(self, registry, path=None):
        super().__init__(_heap.get_heap())
        self._path = path
        if registry:
            registry.register(self)

    @staticmethod
    def merge(files, accumulate=True):
        raise NotImplementedError("shmetrics keeps no per-process files: collect() the heap")


def mark_process_dead(pid, path=None):
    """Does nothing: shmetrics notices dead workers itself (the 'live' gauge modes leave them
    out, and a respawned worker takes over its predecessor's worker id)."""
