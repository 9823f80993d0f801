"""Counter, Gauge, Histogram, Summary, Info and Enum with prometheus_client's API, in the heap.

Each class derives from the shmetrics class of its meter (shmetrics.Counter, ...), so inc,
dec, set, observe and labels are the native methods: no Python frame on the hot path. What
prometheus_client keeps in instance attributes lives in a small definition object in the native
`_spec` slot of a family; its children (from labels()) reach it through `.parent`.
"""

import functools
import os
import re
import threading
import time

from .. import _metrics as _shm
from .. import _shmetrics as _native
from . import _heap
from .registry import REGISTRY

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
METRIC_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_METRIC_LABEL_NAME_RE = re.compile(r"^__.*$")
INF = float("inf")

# prometheus_client 0.16's modes, 0.17's mostrecent ones, and 'shared' (one value for every
# process, shmetrics's own mode).
_MULTIPROC_MODES = frozenset(("all", "liveall", "min", "livemin", "max", "livemax", "sum",
                              "livesum", "mostrecent", "livemostrecent", "shared"))


def _build_full_name(metric_type, name, namespace, subsystem, unit):
    full_name = ""
    if namespace:
        full_name += namespace + "_"
    if subsystem:
        full_name += subsystem + "_"
    full_name += name
    if metric_type == "counter" and full_name.endswith("_total"):
        full_name = full_name[:-6]
    if unit and not full_name.endswith("_" + unit):
        full_name += "_" + unit
    if unit and metric_type in ("info", "stateset"):
        raise ValueError("Metric name is of a type that cannot have a unit: " + full_name)
    return full_name


def _validate_labelname(name):
    if not METRIC_LABEL_NAME_RE.match(name):
        raise ValueError("Invalid label metric name: " + name)
    if RESERVED_METRIC_LABEL_NAME_RE.match(name):
        raise ValueError("Reserved label metric name: " + name)


def _validate_labelnames(cls, labelnames):
    if isinstance(labelnames, str):
        raise TypeError("labelnames must be a sequence of str, not a str")
    labelnames = tuple(labelnames)
    for name in labelnames:
        _validate_labelname(name)
        if name in cls._reserved_labelnames:
            raise ValueError("Reserved label metric name: " + name)
    return labelnames


class _Spec:
    """A family's definition as prometheus_client knows it, and what pickling needs."""

    __slots__ = ("type", "name", "documentation", "labelnames", "unit", "kwargs", "heap_name",
                 "states", "lock", "info_family", "info_keys", "info_last")

    def __init__(self, type_, name, documentation, labelnames, unit, kwargs, heap_name):
        self.type = type_
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.unit = unit
        self.kwargs = kwargs
        self.heap_name = heap_name
        self.states = None
        self.lock = None
        self.info_family = None
        self.info_keys = None
        self.info_last = None


# ---- context managers and decorators, as prometheus_client's ----------------------------------


class _Timer:
    """``metric.time()``: calls metric.<callback>(seconds) at the end of a block or call.

    As a context manager it returns itself, whose ``labels(...)`` picks the child to record in
    when the metric has labels (``with h.time() as t: ...; t.labels("a")``)."""

    def __init__(self, metric, callback_name):
        self._metric = metric
        self._callback_name = callback_name
        self._start = None

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, typ, value, traceback):
        duration = max(time.perf_counter() - self._start, 0)
        getattr(self._metric, self._callback_name)(duration)
        return False

    def labels(self, *args, **kw):
        self._metric = self._metric.labels(*args, **kw)

    def __call__(self, f):
        metric, callback = self._metric, self._callback_name

        @functools.wraps(f)
        def timed(*args, **kwargs):
            with _Timer(metric, callback):
                return f(*args, **kwargs)

        return timed


# The same scopes as the native API's (context managers and decorators).
_InprogressTracker = _shm._InProgress
_ExceptionCounter = _shm._ExceptionCounter


# ---- pickling -----------------------------------------------------------------------------------

_restored = {}  # (pid, class, heap, definition) -> the family this process made from a pickle


def _restore_family(cls, heap_name, kwargs):
    key = (os.getpid(), cls, heap_name, repr(sorted(kwargs.items())))
    metric = _restored.get(key)
    if metric is None:
        metric = cls.__new__(cls)
        metric._setup(None, _heap.heap_named(heap_name), dict(kwargs))
        _restored[key] = metric
    return metric


def _restore_child(family, label_values):
    return family.labels(*label_values)


# ---- the classes --------------------------------------------------------------------------------


class _DropIn:
    """What the six classes share: construction, names, remove, pickling, Collector methods."""

    __slots__ = ()
    _type = None
    _reserved_labelnames = ()

    def _setup(self, registry, heap, kwargs):
        if kwargs.pop("_labelvalues", None):
            raise ValueError("_labelvalues is internal to prometheus_client: use .labels()")
        name = kwargs["name"]
        unit = kwargs.get("unit", "")
        full_name = _build_full_name(self._type, name, kwargs.get("namespace", ""),
                                     kwargs.get("subsystem", ""), unit)
        labelnames = _validate_labelnames(type(self), kwargs.get("labelnames", ()))
        kwargs["labelnames"] = labelnames
        if not METRIC_NAME_RE.match(full_name):
            raise ValueError("Invalid metric name: " + full_name)
        self._check(kwargs)
        native_registry = _heap.registry_for(heap)
        spec = _Spec(self._type, full_name, kwargs["documentation"], labelnames, unit, kwargs,
                     native_registry.heap.name)
        self._register_native(native_registry, spec, kwargs)
        self._spec = spec
        if registry:
            registry.register(self)

    def _check(self, kwargs):
        """Validates the type's own arguments before anything is registered."""

    def _register_native(self, native_registry, spec, kwargs):
        options = {"unit": spec.unit or None}
        options.update(self._options(kwargs))
        options = {k: v for k, v in options.items() if v is not None}
        try:
            native_registry._register(self, spec.name, spec.documentation,
                                      list(spec.labelnames), **options)
        except _native.AlreadyExistsError as e:
            raise ValueError(str(e)) from e
        self._after_register(spec)

    def _options(self, kwargs):
        return {}

    def _after_register(self, spec):
        pass

    # The definition, for a family and for its children alike.
    def _family_spec(self):
        parent = self.parent
        return (parent if parent is not None else self)._spec

    @property
    def _name(self):
        return self._family_spec().name

    @property
    def _documentation(self):
        return self._family_spec().documentation

    @property
    def _labelnames(self):
        return self._family_spec().labelnames

    @property
    def _labelvalues(self):
        return self.label_values or ()

    @property
    def _unit(self):
        return self._family_spec().unit

    @property
    def _kwargs(self):
        spec = self._family_spec()
        return {k: v for k, v in spec.kwargs.items()
                if k not in ("name", "documentation", "labelnames", "namespace", "subsystem",
                             "unit")}

    def _is_observable(self):
        return self.bound

    def _raise_if_not_observable(self):
        if not self._is_observable():
            raise ValueError("%s metric is missing label values" % str(self._type))

    def remove(self, *labelvalues):
        """Removes the child of these label values from the heap (every process stops seeing
        it); KeyError when there is none, as in prometheus_client."""
        labelnames = self._labelnames
        if not labelnames:
            raise ValueError("No label names were set when constructing %s" % self)
        if len(labelvalues) != len(labelnames):
            raise ValueError("Incorrect label count (expected %d, got %s)"
                             % (len(labelnames), labelvalues))
        if not self._remove_series(tuple(str(v) for v in labelvalues)):
            raise KeyError(tuple(str(v) for v in labelvalues))

    def _remove_series(self, values):
        return super().remove(*values)  # the native base's

    def __reduce__(self):
        parent = self.parent
        if parent is not None:
            return (_restore_child, (parent, self.label_values))
        spec = self._spec
        return (_restore_family, (type(self), spec.heap_name, spec.kwargs))

    def __str__(self):
        return f"{self._type}:{self._name}"

    def __repr__(self):
        cls = type(self)
        return f"{cls.__module__}.{cls.__name__}({self._name})"

    # prometheus_client's Collector interface: the family (or this child's samples) as the heap
    # has them, every process's.
    def describe(self):
        from prometheus_client.metrics_core import Metric

        return [Metric(self._name, self._documentation, self._type, self._unit)]

    def collect(self):
        from .registry import _heap_families

        spec = self._family_spec()
        own = dict(zip(self._labelnames, self._labelvalues))
        out = []
        for family in _heap_families(_heap.heap_named(spec.heap_name), {spec.name}):
            family.samples = [s for s in family.samples
                              if all(s.labels.get(k) == v for k, v in own.items())]
            out.append(family)
        return out


class Counter(_DropIn, _shm.Counter):
    """prometheus_client.Counter over the heap: ``inc(amount=1, exemplar=None)``,
    ``count_exceptions()``, ``labels(...)``."""

    __slots__ = ()
    _type = "counter"

    def __init__(self, name, documentation, labelnames=(), namespace="", subsystem="", unit="",
                 registry=REGISTRY, _labelvalues=None):
        self._setup(registry, None, dict(name=name, documentation=documentation,
                                         labelnames=labelnames, namespace=namespace,
                                         subsystem=subsystem, unit=unit,
                                         _labelvalues=_labelvalues))

    def count_exceptions(self, exception=Exception):
        """Counts exceptions of this type (or tuple of types) raised out of a ``with`` block or a
        decorated function."""
        self._raise_if_not_observable()
        return _ExceptionCounter(self, exception)


class Gauge(_DropIn, _shm.Gauge):
    """prometheus_client.Gauge over the heap. ``multiprocess_mode`` picks how the values of the
    processes combine: 'all' (default: one series per worker, labelled worker_id), 'liveall',
    'min', 'livemin', 'max', 'livemax', 'sum', 'livesum', 'mostrecent', 'livemostrecent' (the
    'live' ones leave out workers that died), or 'shared' (one value every process updates)."""

    __slots__ = ()
    _type = "gauge"
    _MULTIPROC_MODES = _MULTIPROC_MODES

    def __init__(self, name, documentation, labelnames=(), namespace="", subsystem="", unit="",
                 registry=REGISTRY, _labelvalues=None, multiprocess_mode="all"):
        if multiprocess_mode not in _MULTIPROC_MODES:
            raise ValueError("Invalid multiprocess mode: " + multiprocess_mode)
        self._setup(registry, None, dict(name=name, documentation=documentation,
                                         labelnames=labelnames, namespace=namespace,
                                         subsystem=subsystem, unit=unit,
                                         _labelvalues=_labelvalues,
                                         multiprocess_mode=multiprocess_mode))

    def _options(self, kwargs):
        return {"mode": kwargs["multiprocess_mode"]}

    def track_inprogress(self):
        """Adds 1 while a ``with`` block or a decorated function runs."""
        self._raise_if_not_observable()
        return _InprogressTracker(self)

    def time(self):
        """Sets the gauge to the seconds a ``with`` block or a decorated function took."""
        return _Timer(self, "set")

    def set_function(self, f):
        raise NotImplementedError(
            "Gauge.set_function() cannot work across processes (the function lives in one): "
            "set the gauge where the value changes instead")


class Summary(_DropIn, _shm.Summary):
    """prometheus_client.Summary over the heap: count and sum (no quantiles, as there)."""

    __slots__ = ()
    _type = "summary"
    _reserved_labelnames = ("quantile",)

    def __init__(self, name, documentation, labelnames=(), namespace="", subsystem="", unit="",
                 registry=REGISTRY, _labelvalues=None):
        self._setup(registry, None, dict(name=name, documentation=documentation,
                                         labelnames=labelnames, namespace=namespace,
                                         subsystem=subsystem, unit=unit,
                                         _labelvalues=_labelvalues))

    def time(self):
        """Observes the seconds a ``with`` block or a decorated function took."""
        return _Timer(self, "observe")


class Histogram(_DropIn, _shm.Histogram):
    """prometheus_client.Histogram over the heap: ``observe(amount, exemplar=None)``,
    ``time()``; ``buckets`` as there (sorted, +Inf added)."""

    __slots__ = ()
    _type = "histogram"
    _reserved_labelnames = ("le",)
    DEFAULT_BUCKETS = (.005, .01, .025, .05, .075, .1, .25, .5, .75, 1.0, 2.5, 5.0, 7.5, 10.0,
                       INF)

    def __init__(self, name, documentation, labelnames=(), namespace="", subsystem="", unit="",
                 registry=REGISTRY, _labelvalues=None, buckets=DEFAULT_BUCKETS):
        upper_bounds = [float(b) for b in buckets]
        if upper_bounds != sorted(upper_bounds):
            raise ValueError("Buckets not in sorted order")
        if upper_bounds and upper_bounds[-1] != INF:
            upper_bounds.append(INF)
        if len(upper_bounds) < 2:
            raise ValueError("Must have at least two buckets")
        self._setup(registry, None, dict(name=name, documentation=documentation,
                                         labelnames=labelnames, namespace=namespace,
                                         subsystem=subsystem, unit=unit,
                                         _labelvalues=_labelvalues, buckets=tuple(buckets)))

    def _options(self, kwargs):
        return {"buckets": [float(b) for b in kwargs["buckets"] if float(b) != INF]}

    @property
    def _upper_bounds(self):
        bounds = [float(b) for b in self._family_spec().kwargs["buckets"]]
        if bounds[-1] != INF:
            bounds.append(INF)
        return bounds

    def time(self):
        """Observes the seconds a ``with`` block or a decorated function took."""
        return _Timer(self, "observe")


class Enum(_DropIn, _shm.StateSet):
    """prometheus_client.Enum over the heap (an OpenMetrics stateset): ``state(name)``. A new
    series starts in the first state, as there."""

    __slots__ = ()
    _type = "stateset"

    def __init__(self, name, documentation, labelnames=(), namespace="", subsystem="", unit="",
                 registry=REGISTRY, _labelvalues=None, states=None):
        self._setup(registry, None, dict(name=name, documentation=documentation,
                                         labelnames=labelnames, namespace=namespace,
                                         subsystem=subsystem, unit=unit,
                                         _labelvalues=_labelvalues, states=states))

    def _check(self, kwargs):
        name, states = kwargs["name"], kwargs["states"]
        if name in kwargs["labelnames"]:
            raise ValueError(f"Overlapping labels for Enum metric: {name}")
        if not states:
            raise ValueError(f"No states provided for Enum metric: {name}")
        kwargs["states"] = tuple(str(s) for s in states)

    def _options(self, kwargs):
        return {"states": list(kwargs["states"])}

    def _after_register(self, spec):
        spec.states = spec.kwargs["states"]
        if not spec.labelnames:
            _start_in_first_state(self, spec.states)

    def labels(self, *labelvalues, **labelkwargs):
        """The child of these label values; a new one is in the first state."""
        child = _native.StateSetBase.labels(self, *labelvalues, **labelkwargs)
        _start_in_first_state(child, self._spec.states)
        return child

    state = _native.StateSetBase.set_only  # state(name): this state on, every other off


def _start_in_first_state(metric, states):
    for s in states:
        if metric.is_set(s):
            return
    metric.set_only(states[0])


class Info(_DropIn, _shm.Info):
    """prometheus_client.Info over the heap: ``info({"version": "1.2", ...})``.

    The keys of the first info() call become label names of the family in the heap (after the
    declared labelnames, sorted): later calls, in this process or any other, must give the same
    keys (ValueError otherwise), as the heap fixes a family's label names. Each call replaces the
    value: the series this process set before is removed (without labels: every series of the
    family, so one value remains). Until the first info() the family is not in the heap and the
    exposition leaves it out.
    """

    __slots__ = ()
    _type = "info"

    def __init__(self, name, documentation, labelnames=(), namespace="", subsystem="", unit="",
                 registry=REGISTRY, _labelvalues=None):
        self._setup(registry, None, dict(name=name, documentation=documentation,
                                         labelnames=labelnames, namespace=namespace,
                                         subsystem=subsystem, unit=unit,
                                         _labelvalues=_labelvalues))

    def _register_native(self, native_registry, spec, kwargs):
        # Registered at the first info(), when the keys are known. An Info object is never
        # bound to a native family; a child keeps (definition, label values) in its _spec.
        spec.lock = threading.Lock()
        spec.info_last = {}

    def _family_spec(self):
        spec = self._spec
        return spec[0] if isinstance(spec, tuple) else spec

    @property
    def _labelvalues(self):
        spec = self._spec
        return spec[1] if isinstance(spec, tuple) else ()

    def _is_observable(self):
        return not self._labelnames or bool(self._labelvalues)

    def labels(self, *labelvalues, **labelkwargs):
        spec = self._spec
        if isinstance(spec, tuple):
            raise ValueError("{} already has labels set ({}); can not chain calls to .labels()"
                             .format(self, dict(zip(spec[0].labelnames, spec[1]))))
        if not spec.labelnames:
            raise ValueError("No label names were set when constructing %s" % self)
        if labelvalues and labelkwargs:
            raise ValueError("Can't pass both *args and **kwargs")
        if labelkwargs:
            if sorted(labelkwargs) != sorted(spec.labelnames):
                raise ValueError("Incorrect label names")
            labelvalues = tuple(str(labelkwargs[n]) for n in spec.labelnames)
        else:
            if len(labelvalues) != len(spec.labelnames):
                raise ValueError("Incorrect label count")
            labelvalues = tuple(str(v) for v in labelvalues)
        child = type(self).__new__(type(self))
        child._spec = (spec, labelvalues)
        return child

    def info(self, val):
        """Sets the information: a dict of str to str."""
        spec, labelvalues = self._family_spec(), self._labelvalues
        if set(spec.labelnames).intersection(val.keys()):
            raise ValueError("Overlapping labels for Info metric, metric: {} child: {}".format(
                spec.labelnames, val))
        self._raise_if_not_observable()
        keys = tuple(sorted(val))
        values = tuple(str(val[k]) for k in keys)
        with spec.lock:
            family = spec.info_family
            if family is None:
                native_registry = _heap.registry_for(_heap.heap_named(spec.heap_name))
                try:
                    family = native_registry._add(_shm.Info, spec.name, spec.documentation,
                                                  spec.labelnames + keys, {})
                except _native.AlreadyExistsError as e:
                    raise ValueError(
                        f"Info metric {spec.name}: the heap has it with other keys than "
                        f"{list(keys)} (info() must give the same keys every time): {e}") from e
                spec.info_family, spec.info_keys = family, keys
            elif keys != spec.info_keys:
                raise ValueError(
                    f"Info metric {spec.name} was set with the keys {list(spec.info_keys)}: "
                    f"info() must give the same keys every time (got {list(keys)})")
            last = spec.info_last.get(labelvalues)
            if last != values:
                if not spec.labelnames:
                    family.clear()
                elif last is not None:
                    family.remove(*labelvalues, *last)
            family.labels(*labelvalues, *values)
            spec.info_last[labelvalues] = values

    def _remove_series(self, values):
        spec = self._spec
        with spec.lock:
            last = spec.info_last.pop(values, None)
            if last is None or spec.info_family is None:
                return False
            return spec.info_family.remove(*values, *last)

    def clear(self):
        spec = self._family_spec()
        with spec.lock:
            spec.info_last.clear()
            if spec.info_family is not None:
                spec.info_family.clear()

    def __reduce__(self):
        spec = self._spec
        if isinstance(spec, tuple):
            return (_restore_child, (_InfoFamilyRef(spec[0]), spec[1]))
        return (_restore_family, (type(self), spec.heap_name, spec.kwargs))


class _InfoFamilyRef:
    """Pickles an Info child's family (the child's own _spec holds the definition)."""

    def __init__(self, spec):
        self.spec = spec

    def __reduce__(self):
        return (_restore_family, (Info, self.spec.heap_name, self.spec.kwargs))
