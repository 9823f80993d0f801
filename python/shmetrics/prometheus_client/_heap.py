"""The heap of shmetrics.prometheus_client: from SHMETRICS_HEAP, or set in code with set_heap().

Every process that uses it is a worker of it (a stable worker id, the worker_id label of
per-worker gauges); forked children claim their own id automatically.
"""

import os
import threading

from .. import _pickling
from .. import _shmetrics as _native

ENV_VAR = "SHMETRICS_HEAP"

_lock = threading.RLock()
_heap = None  # the default heap, once opened or set
_used = False  # a metric, collector or exporter used the default heap: it is fixed from then on
_registries = {}  # heap name -> the native Registry this package registers families with


def _open_or_create(name):
    """Opens the heap `name` (a path when it starts with '/'), creating it if it is missing."""
    if not name.startswith("/"):
        return _native.Heap.open_or_create(name)
    for _ in range(10):  # a racing process may create or remove it between the two calls
        try:
            return _native.Heap.open_at_path(name)
        except _native.NotFoundError:
            pass
        try:
            return _native.Heap.create_at_path(name)
        except _native.AlreadyExistsError:
            pass
    return _native.Heap.open_at_path(name)


def _become_worker(heap):
    if not heap.read_only and heap.worker_id is None:
        _pickling._attach_quietly(heap)


def set_heap(heap):
    """Makes `heap` (a shmetrics.Heap, or a heap name, or a path starting with '/', opened or
    created) the heap of every metric created from now on in this process and its forked
    children, instead of the one SHMETRICS_HEAP names. Call it before the first metric is
    created; setting another heap afterwards raises RuntimeError. Returns the heap."""
    global _heap
    with _lock:
        if isinstance(heap, str):
            if _heap is not None and _heap.name == heap:
                return _heap
            if _used:
                _refuse(heap)
            heap = _open_or_create(heap)
        elif not isinstance(heap, _native.Heap):
            raise TypeError(f"set_heap() takes a shmetrics.Heap or a heap name, not {heap!r}")
        if _heap is not None and _heap.name == heap.name:
            return _heap
        if _used:
            _refuse(heap.name if isinstance(heap, _native.Heap) else heap)
        _become_worker(heap)
        _heap = heap
        return heap


def _refuse(name):
    raise RuntimeError(
        f"shmetrics.prometheus_client already uses the heap '{_heap.name}'; set_heap('{name}') "
        "must come before the first metric is created")


def get_heap():
    """The default heap: the one set_heap() set, else the one SHMETRICS_HEAP names (opened, or
    created when missing). Raises RuntimeError when neither is set."""
    global _heap, _used
    heap = _heap
    if heap is not None and _used:
        return heap
    with _lock:
        if _heap is None:
            name = os.environ.get(ENV_VAR, "")
            if not name:
                raise RuntimeError(
                    "shmetrics.prometheus_client has no heap: set the environment variable "
                    f"{ENV_VAR} to a heap name (or a path starting with '/'), or call "
                    "shmetrics.prometheus_client.set_heap(...) before creating the first metric")
            heap = _open_or_create(name)
            _become_worker(heap)
            _heap = heap
        _used = True
        return _heap


def heap_named(name):
    """The default heap when it has this name; else that heap, opened (a process that unpickles
    a metric of another heap), which becomes the default when none was set."""
    global _heap
    with _lock:
        if _heap is not None and _heap.name == name:
            return _heap
        if _heap is None and os.environ.get(ENV_VAR, name) in ("", name):
            return set_heap(name)
        heap = _registries.get(name)
        if heap is not None:
            return heap.heap
        heap = _open_or_create(name)
        _become_worker(heap)
        return heap


ENV_MAX_CHILDREN = "SHMETRICS_MAX_CHILDREN"


def _max_children():
    """Children per family before new label sets share the overflow child: SHMETRICS_MAX_CHILDREN,
    default 10,000 (prometheus_client has no limit; a heap has a size)."""
    text = os.environ.get(ENV_MAX_CHILDREN, "")
    if not text:
        return 10000
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{ENV_MAX_CHILDREN} must be a positive integer, not {text!r}")
    return n


def registry_for(heap=None):
    """The native Registry of `heap` (default: the default heap), one per heap and process."""
    if heap is None:
        heap = get_heap()
    registry = _registries.get(heap.name)
    if registry is None:
        from .._metrics import Registry

        with _lock:
            registry = _registries.get(heap.name)
            if registry is None:
                registry = Registry(heap, max_children=_max_children())
                _registries[heap.name] = registry
    return registry


def _reset():
    """Forgets the default heap and gives its worker id back (tests only: the next metric opens
    one again)."""
    global _heap, _used
    with _lock:
        if _heap is not None:
            _registries.pop(_heap.name, None)
            if _heap.worker_id is not None:
                _pickling.detach(_heap)
        _heap = None
        _used = False
