"""Pickling by name, so heaps, registries and metrics cross into multiprocessing's spawn and
forkserver children (and Pool arguments under fork): a heap pickles as its name and re-opens
there; a registry as its heap and options; a family as its registry and definition, registered
again (the same definition is the same family); a child as its family and label values.

Worker ids: a process that attached to a heap stays attached across fork(): each forked child
claims its own id (os.register_at_fork), and a process that unpickles a writable heap attaches
to it. A process is a worker of one heap at a time.
"""

import os
import warnings

from . import _shmetrics as _native

# What this process opened by unpickling, by pid (a forked child does not reuse its parent's).
_heaps = {}
_registries = {}
_attached = None  # the heap this process attached to, re-attached in forked children
_inherited = False  # _attached was re-attached after fork, not asked for in this process


def attach(heap):
    """Claims a worker id for this process in `heap` and remembers it for forked children.

    A forked child re-attaches to its parent's heap by itself; attaching it explicitly to
    another heap gives that one up first (a process is a worker of one heap at a time)."""
    global _attached, _inherited
    if _inherited and _attached is not None and _attached.name != heap.name:
        _native_detach_worker(_attached)
    worker_id = _native_attach_worker(heap)
    _attached, _inherited = heap, False
    return worker_id


def detach(heap):
    global _attached
    _native_detach_worker(heap)
    if _attached is not None and _attached.name == heap.name:
        _attached = None


def _attach_quietly(heap):
    try:
        attach(heap)
    except _native.Error as e:  # no free id, or a worker of another heap: the shared stripe
        warnings.warn(f"shmetrics: this process (pid {os.getpid()}) writes without a worker "
                      f"id: {e}", RuntimeWarning, stacklevel=3)


def _after_fork_in_child():
    global _inherited
    _heaps.clear()
    _registries.clear()
    if _attached is not None:
        _attach_quietly(_attached)
        _inherited = True


_native_attach_worker = _native.Heap.attach_worker
_native_detach_worker = _native.Heap.detach_worker
os.register_at_fork(after_in_child=_after_fork_in_child)


def reduce_heap(heap):
    return (restore_heap, (heap.name, heap.read_only))


def restore_heap(name, read_only):
    key = (os.getpid(), name, read_only)
    heap = _heaps.get(key)
    if heap is None:
        if name.startswith("/"):
            heap = _native.Heap.open_at_path(name, read_only=read_only)
        else:
            heap = _native.Heap.open(name, read_only=read_only)
        if not read_only and heap.worker_id is None:
            _attach_quietly(heap)
        _heaps[key] = heap
    return heap


def reduce_registry(registry):
    return (restore_registry,
            (type(registry), registry.heap, registry.prefix,
             registry._explicit_const_labels, registry.read_environment,
             registry.max_children, registry.utf8_names))


def restore_registry(cls, heap, prefix, const_labels, read_environment, max_children,
                     utf8_names=False):
    key = (os.getpid(), cls, heap.name, prefix, tuple(sorted(const_labels.items())),
           read_environment, max_children, utf8_names)
    registry = _registries.get(key)
    if registry is None:
        registry = cls(heap, prefix=prefix, const_labels=const_labels,
                       read_environment=read_environment, max_children=max_children,
                       utf8_names=utf8_names)
        _registries[key] = registry
    return registry


def reduce_metric(metric):
    if metric.parent is not None:
        return (restore_child, (metric.parent, metric.label_values))
    spec = getattr(metric, "_spec", None)
    if spec is None or metric.registry is None:
        raise TypeError(f"cannot pickle {metric!r}: it was not made by a shmetrics Registry")
    return (restore_family, (type(metric), metric.registry) + spec)


def restore_family(cls, registry, name, documentation, labelnames, options):
    return registry._add(cls, name, documentation, labelnames, options)


def restore_child(family, label_values):
    return family.labels(*label_values)
