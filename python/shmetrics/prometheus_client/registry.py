"""CollectorRegistry and REGISTRY as prometheus_client has them, and HeapCollector: the heap as
a prometheus_client collector.

A drop-in CollectorRegistry remembers which metrics were registered in it (duplicates raise
prometheus_client's ValueError), and exposes, from the heap, the families of those metrics with
every process's values; with a MultiProcessCollector (or a HeapCollector) in it, every family of
the heap. Other collectors registered in it (custom collectors yielding prometheus_client
Metric objects) are collected as prometheus_client would.
"""

import copy
import threading

from .. import _shmetrics as _native
from . import _heap

# The sample names each type writes besides its name, as prometheus_client reserves them.
_TYPE_SUFFIXES = {
    "counter": ["_total", "_created"],
    "summary": ["_sum", "_count", "_created"],
    "histogram": ["_bucket", "_sum", "_count", "_created"],
    "gaugehistogram": ["_bucket", "_gsum", "_gcount"],
    "info": ["_info"],
}


def _is_drop_in(collector):
    from .metrics import _DropIn

    return isinstance(collector, _DropIn)


def _heap_families(heap, names=None):
    """The families of `heap` as prometheus_client Metric objects (read from its OpenMetrics
    exposition with prometheus_client's parser): every one, or those named in `names`."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    text = _native.expose(heap, "openmetrics").decode("utf-8")
    if names is not None:
        text = filter_families(text, names)
    return list(text_string_to_metric_families(text))


def filter_families(text, names):
    """The families of an exposition (either format) whose name (the name of their HELP, TYPE
    or UNIT line) is in `names`; '# EOF' is kept."""
    out = []
    current, keep = None, False
    for line in text.splitlines(keepends=True):
        if line.startswith("# "):
            if line.startswith("# EOF"):
                out.append(line)
                continue
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE", "UNIT"):
                name = parts[2].rstrip("\n")
                if name != current:
                    current = name
                    keep = name in names
        if keep:
            out.append(line)
    return "".join(out)


def exposed_names(metric):
    """The names a drop-in metric's family has in either exposition format."""
    spec = metric._family_spec()
    names = {spec.name}
    if spec.type == "counter":
        names.add(spec.name + "_total")
    elif spec.type == "info":
        names.add(spec.name + "_info")
    return names


class HeapCollector:
    """Every family of a heap (default: the default heap) as a prometheus_client collector.

    Register it with a real prometheus_client registry to keep existing exposition code::

        prometheus_client.REGISTRY.register(shmetrics.prometheus_client.HeapCollector())
        prometheus_client.generate_latest()  # every process's values

    collect() yields prometheus_client Metric families (with _created samples and exemplars,
    read from the OpenMetrics exposition); describe() yields none, so registering it never
    collects and never clashes."""

    def __init__(self, heap=None):
        if heap is None:
            heap = _heap.get_heap()
        elif isinstance(heap, str):
            heap = _heap.heap_named(heap)
        self._heap = heap

    @property
    def heap(self):
        return self._heap

    def describe(self):
        return []

    def collect(self):
        return _heap_families(self._heap)


class CollectorRegistry:
    """prometheus_client's CollectorRegistry for the heap (see the module docstring)."""

    def __init__(self, auto_describe=False, target_info=None):
        self._collector_to_names = {}
        self._names_to_collectors = {}
        self._auto_describe = auto_describe
        self._lock = threading.Lock()
        self._target_info = {}
        self.set_target_info(target_info)

    def register(self, collector):
        """Adds a collector (a drop-in metric, a HeapCollector or any prometheus_client
        collector)."""
        with self._lock:
            names = self._get_names(collector)
            duplicates = set(self._names_to_collectors).intersection(names)
            if duplicates:
                raise ValueError(
                    "Duplicated timeseries in CollectorRegistry: {}".format(duplicates))
            for name in names:
                self._names_to_collectors[name] = collector
            self._collector_to_names[collector] = names

    def unregister(self, collector):
        """Removes a collector (the heap keeps a metric's family: see the module docstring)."""
        with self._lock:
            for name in self._collector_to_names[collector]:
                del self._names_to_collectors[name]
            del self._collector_to_names[collector]

    def _get_names(self, collector):
        if _is_drop_in(collector):
            spec = collector._family_spec()
            return [spec.name] + [spec.name + s for s in _TYPE_SUFFIXES.get(spec.type, [])]
        desc_func = getattr(collector, "describe", None)
        if not desc_func and self._auto_describe:
            desc_func = collector.collect
        if not desc_func:
            return []
        result = []
        for metric in desc_func():
            result.append(metric.name)
            for suffix in _TYPE_SUFFIXES.get(metric.type, []):
                result.append(metric.name + suffix)
        return result

    def _plan(self):
        """What to collect: {heap name: (heap, names or None for all)}, the other collectors,
        and the target_info labels."""
        with self._lock:
            collectors = list(self._collector_to_names)
            target_info = self._target_info
        heaps, others = {}, []
        for c in collectors:
            if isinstance(c, HeapCollector):
                heaps[c.heap.name] = (c.heap, None)
            elif _is_drop_in(c):
                spec = c._family_spec()
                entry = heaps.get(spec.heap_name)
                if entry is None:
                    entry = heaps[spec.heap_name] = (_heap.heap_named(spec.heap_name), set())
                if entry[1] is not None:
                    entry[1].update(exposed_names(c))
            else:
                others.append(c)
        return heaps, others, target_info

    def collect(self):
        """Yields prometheus_client Metric families: target_info, then the heap's families,
        then the other collectors'."""
        heaps, others, target_info = self._plan()
        if target_info:
            yield self._target_info_metric()
        for heap, names in heaps.values():
            yield from _heap_families(heap, names)
        for c in others:
            yield from c.collect()

    def restricted_registry(self, names):
        """An object whose collect() only yields the samples of these names."""
        return RestrictedRegistry(names, self)

    def set_target_info(self, labels):
        with self._lock:
            if labels:
                if not self._target_info and "target_info" in self._names_to_collectors:
                    raise ValueError("CollectorRegistry already contains a target_info metric")
                self._names_to_collectors["target_info"] = _EMPTY
            elif self._target_info:
                self._names_to_collectors.pop("target_info", None)
            self._target_info = labels

    def get_target_info(self):
        with self._lock:
            return self._target_info

    def _target_info_metric(self):
        from prometheus_client.metrics_core import Metric

        m = Metric("target", "Target metadata", "info")
        m.add_sample("target_info", self._target_info, 1)
        return m

    def get_sample_value(self, name, labels=None):
        """The value of a sample, or None (slow: for tests, as in prometheus_client)."""
        if labels is None:
            labels = {}
        for metric in self.collect():
            for s in metric.samples:
                if s.name == name and s.labels == labels:
                    return s.value
        return None

    def _render(self, fmt):
        """The exposition of this registry as bytes, fmt 'prometheus' or 'openmetrics': the
        heap's native exposition, and prometheus_client's of the other collectors."""
        heaps, others, target_info = self._plan()
        parts = []
        for heap, names in heaps.values():
            text = _native.expose(heap, fmt).decode("utf-8")
            if names is not None:
                text = filter_families(text, names)
            parts.append(text.replace("# EOF\n", ""))
        if others or target_info:
            parts.append(_render_collectors(_Collectors(self, others, target_info), fmt)
                         .decode("utf-8").replace("# EOF\n", ""))
        if fmt == "openmetrics":
            parts.append("# EOF\n")
        return "".join(parts).encode("utf-8")


def _render_collectors(registry, fmt):
    if fmt == "openmetrics":
        from prometheus_client.openmetrics.exposition import generate_latest
    else:
        from prometheus_client.exposition import generate_latest
    return generate_latest(registry)


class _Collectors:
    def __init__(self, registry, collectors, target_info):
        self._registry = registry
        self._collectors = collectors
        self._target_info = target_info

    def collect(self):
        if self._target_info:
            yield self._registry._target_info_metric()
        for c in self._collectors:
            yield from c.collect()


class _EmptyCollector:
    def collect(self):
        return []


_EMPTY = _EmptyCollector()


class RestrictedRegistry:
    def __init__(self, names, registry):
        self._name_set = set(names)
        self._registry = registry

    def collect(self):
        for metric in self._registry.collect():
            m = metric._restricted_metric(self._name_set)
            if m:
                yield m


REGISTRY = CollectorRegistry(auto_describe=True)
