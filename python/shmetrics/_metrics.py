"""The metric classes of the native API and the Registry that makes them.

Each class derives from the native base type of its meter (shmetrics._shmetrics.CounterBase,
...), whose methods (inc, observe, labels, ...) run in C without a Python frame; this layer adds
what is not hot: timing scopes, in-progress tracking, exception counting and pickling.
"""

import functools
import time

from . import _shmetrics as _native
from . import _pickling


class _Scope:
    """Times a block or a function and hands the seconds to `record` at its end.

    Works as a context manager (``with h.time():``) and as a decorator (``@h.time()``). The
    clock is time.perf_counter (monotonic), so a scope never records a negative duration.
    """

    __slots__ = ("_record", "_start")

    def __init__(self, record):
        self._record = record
        self._start = None

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._record(max(time.perf_counter() - self._start, 0.0))
        return False

    def __call__(self, f):
        record = self._record

        @functools.wraps(f)
        def timed(*args, **kwargs):
            with _Scope(record):
                return f(*args, **kwargs)

        return timed


class _InProgress:
    """Adds 1 to a gauge while a block or function runs (context manager and decorator)."""

    __slots__ = ("_gauge",)

    def __init__(self, gauge):
        self._gauge = gauge

    def __enter__(self):
        self._gauge.inc()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._gauge.dec()
        return False

    def __call__(self, f):
        gauge = self._gauge

        @functools.wraps(f)
        def tracked(*args, **kwargs):
            with _InProgress(gauge):
                return f(*args, **kwargs)

        return tracked


class _ExceptionCounter:
    """Counts the exceptions of `exception` type raised in a block or function, re-raising them."""

    __slots__ = ("_counter", "_exception")

    def __init__(self, counter, exception):
        self._counter = counter
        self._exception = exception

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, self._exception):
            self._counter.inc()
        return False

    def __call__(self, f):
        counter, exception = self._counter, self._exception

        @functools.wraps(f)
        def counted(*args, **kwargs):
            with _ExceptionCounter(counter, exception):
                return f(*args, **kwargs)

        return counted


class _Metric:
    """What every metric class adds to its native base: pickling by name."""

    __slots__ = ()

    def __reduce__(self):
        return _pickling.reduce_metric(self)


class Counter(_Metric, _native.CounterBase):
    """A monotonically increasing value: ``inc(amount=1, exemplar=None)``, ``value()``."""

    __slots__ = ()

    def count_exceptions(self, exception=Exception):
        """Counts exceptions of this type raised in a ``with`` block or a decorated function."""
        return _ExceptionCounter(self, exception)


class Gauge(_Metric, _native.GaugeBase):
    """A value that goes up and down: ``inc``, ``dec``, ``set``, ``set_to_current_time``."""

    __slots__ = ()

    def track_inprogress(self):
        """Adds 1 while a ``with`` block or a decorated function runs."""
        return _InProgress(self)

    def time(self):
        """Sets the gauge to the seconds a ``with`` block or a decorated function took."""
        return _Scope(self.set)


class Histogram(_Metric, _native.HistogramBase):
    """Counts observations in buckets: ``observe(amount, exemplar=None)``, ``time()``."""

    __slots__ = ()

    def time(self):
        """Observes the seconds a ``with`` block or a decorated function took."""
        return _Scope(self.observe)


class NativeHistogram(_Metric, _native.NativeHistogramBase):
    """Prometheus's native histogram (exponential buckets, exposed in full by the protobuf
    format; in text as count and sum): ``observe(amount, exemplar=None)``, ``time()``."""

    __slots__ = ()

    def time(self):
        """Observes the seconds a ``with`` block or a decorated function took."""
        return _Scope(self.observe)


class Summary(_Metric, _native.SummaryBase):
    """Count, sum and optionally quantiles of observations: ``observe``, ``time()``."""

    __slots__ = ()

    def time(self):
        """Observes the seconds a ``with`` block or a decorated function took."""
        return _Scope(self.observe)


class Info(_Metric, _native.InfoBase):
    """OpenMetrics info: a child's labels are the information, ``labels(version="1.2")``."""

    __slots__ = ()


class StateSet(_Metric, _native.StateSetBase):
    """Up to 64 named states, each on or off: ``set``, ``set_only``, ``is_set``."""

    __slots__ = ()


class Timer(_Metric, _native.TimerBase):
    """Spectator's timer: count, total, sum of squares and max of durations in seconds."""

    __slots__ = ()

    def time(self):
        """Records the seconds a ``with`` block or a decorated function took."""
        return _Scope(self.record)


class DistributionSummary(_Metric, _native.DistributionSummaryBase):
    """Spectator's distribution summary of amounts: ``record(amount)``."""

    __slots__ = ()


class MaxGauge(_Metric, _native.MaxGaugeBase):
    """Spectator's max gauge: the largest value set since the last scrape."""

    __slots__ = ()


class AgeGauge(_Metric, _native.AgeGaugeBase):
    """Spectator's age gauge: seconds since the last ``reset()``, computed at each scrape."""

    __slots__ = ()


class PercentileTimer(_Metric, _native.PercentileTimerBase):
    """Spectator's percentile timer: durations in fixed log-linear buckets (a histogram)."""

    __slots__ = ()

    def time(self):
        """Records the seconds a ``with`` block or a decorated function took."""
        return _Scope(self.record)


class PercentileDistributionSummary(_Metric, _native.PercentileDistributionSummaryBase):
    """Spectator's percentile distribution summary of integer amounts."""

    __slots__ = ()


class Registry(_native.RegistryBase):
    """Registers families in a heap: ``Registry(heap, prefix="", const_labels=None)``;
    ``utf8_names=True`` admits metric and label names beyond the legacy character set.

    Registering the same definition again, in this process or any other, returns the same
    family; a conflicting one raises AlreadyExistsError. Label names are fixed per family;
    ``family.labels(*values)`` or ``family.labels(**pairs)`` returns a child. A family without
    labels is its own child: ``registry.counter("jobs", "Jobs run").inc()``.
    """

    def __reduce__(self):
        return _pickling.reduce_registry(self)

    def _add(self, cls, name, documentation, labelnames, options):
        if isinstance(labelnames, str):
            raise TypeError("labelnames must be a sequence of str, not a str")
        labelnames = tuple(labelnames)
        options = {k: v for k, v in options.items() if v is not None}
        metric = cls.__new__(cls)
        self._register(metric, name, documentation, list(labelnames), **options)
        metric._spec = (name, documentation, labelnames, options)
        return metric

    def counter(self, name, documentation, labelnames=(), *, unit=None, max_children=None,
                striped=None, cls=Counter):
        """A counter. ``striped=True`` gives each worker its own cache line (hot counters)."""
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children, striped=striped))

    def gauge(self, name, documentation, labelnames=(), *, unit=None, max_children=None,
              mode=None, ttl=None, cls=Gauge):
        """A gauge. ``mode``: 'shared' (default: one value for every process), or a per-worker
        mode: 'sum', 'min', 'max', 'mostrecent', 'all', and their 'live' forms, which leave out
        workers that died. ``ttl`` in seconds hides a value not set for that long."""
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children, mode=mode, ttl=ttl))

    def histogram(self, name, documentation, labelnames=(), *, unit=None, max_children=None,
                  buckets=None, cls=Histogram):
        """A histogram; ``buckets`` default to Prometheus's (.005 ... 10); +Inf is implied."""
        if buckets is not None:
            buckets = [float(b) for b in buckets]
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children, buckets=buckets))

    def native_histogram(self, name, documentation, labelnames=(), *, unit=None,
                         max_children=None, schema=None, zero_threshold=None, min_value=None,
                         max_value=None, negative_buckets=None, max_buckets=None,
                         cls=NativeHistogram):
        """A native histogram: bucket i covers (2^((i-1)/2^schema), 2^(i/2^schema)]; ``schema``
        -4..8 (default 3), buckets kept for magnitudes ``min_value``..``max_value`` (default
        1e-6..1e4, values beyond count in the outermost), ``zero_threshold`` (default 2^-128),
        ``negative_buckets`` (default False: negative values count in the zero bucket),
        ``max_buckets`` per scrape (default 160; 0: no limit)."""
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children, schema=schema,
                              zero_threshold=zero_threshold, min_value=min_value,
                              max_value=max_value, negative_buckets=negative_buckets,
                              max_buckets=max_buckets))

    def summary(self, name, documentation, labelnames=(), *, unit=None, max_children=None,
                quantiles=None, max_age=None, age_buckets=None, relative_accuracy=None,
                min_value=None, max_value=None, cls=Summary):
        """A summary: count and sum, and with ``quantiles`` (e.g. [0.5, 0.99]) quantiles over a
        sliding window of ``max_age`` seconds (default 600) shared by every process."""
        if quantiles is not None:
            quantiles = [float(q) for q in quantiles]
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children, quantiles=quantiles,
                              max_age=max_age, age_buckets=age_buckets,
                              relative_accuracy=relative_accuracy, min_value=min_value,
                              max_value=max_value))

    def info(self, name, documentation, labelnames, *, cls=Info):
        """An info family: ``registry.info("build", "Build", ["version"]).labels("1.2")``."""
        return self._add(cls, name, documentation, labelnames, {})

    def state_set(self, name, documentation, labelnames=(), *, states, cls=StateSet):
        """A stateset of up to 64 ``states``."""
        return self._add(cls, name, documentation, labelnames, dict(states=list(states)))

    def timer(self, name, documentation, labelnames=(), *, max_children=None, cls=Timer):
        """Spectator's timer (unit seconds)."""
        return self._add(cls, name, documentation, labelnames, dict(max_children=max_children))

    def distribution_summary(self, name, documentation, labelnames=(), *, unit=None,
                             max_children=None, cls=DistributionSummary):
        """Spectator's distribution summary."""
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children))

    def max_gauge(self, name, documentation, labelnames=(), *, unit=None, max_children=None,
                  cls=MaxGauge):
        """Spectator's max gauge."""
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children))

    def age_gauge(self, name, documentation, labelnames=(), *, unit=None, max_children=None,
                  cls=AgeGauge):
        """Spectator's age gauge (unit seconds)."""
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children))

    def percentile_timer(self, name, documentation, labelnames=(), *, max_children=None,
                         min=None, max=None, cls=PercentileTimer):
        """Spectator's percentile timer; ``min`` and ``max`` (seconds) trim the buckets."""
        return self._add(cls, name, documentation, labelnames,
                         dict(max_children=max_children, min=min, max=max))

    def percentile_distribution_summary(self, name, documentation, labelnames=(), *, unit=None,
                                        max_children=None, min=None, max=None,
                                        cls=PercentileDistributionSummary):
        """Spectator's percentile distribution summary of non-negative integers."""
        return self._add(cls, name, documentation, labelnames,
                         dict(unit=unit, max_children=max_children, min=min, max=max))
