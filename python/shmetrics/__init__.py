"""shmetrics: metrics shared by every process of a service, in one named shared-memory heap.

The master creates the heap before forking; workers update it with atomic instructions; one
collector (an embedded HTTP exposer in the master, a WSGI app, or the `shmetrics` tool) reads
it. The C++ library and this package share the same heap format, so a C++ process and Python
workers can update the same families.

    import shmetrics
    heap = shmetrics.Heap.create("myapp")              # in the master, before forking
    registry = shmetrics.Registry(heap, prefix="shop")
    requests = registry.counter("http_requests", "Requests served", ["method", "code"])
    exposer = shmetrics.start_http_server(heap, port=9464)
    ... fork workers; in each worker:
    heap.attach_worker()
    requests.labels("GET", "200").inc()

Errors: invalid arguments raise ValueError (shmetrics.InvalidArgumentError is one); every
other failure a subclass of shmetrics.Error, with the C++ library's message.
"""

from . import _shmetrics
from . import _pickling
from ._shmetrics import (
    AlreadyExistsError,
    DataLossError,
    Error,
    FailedPreconditionError,
    Heap,
    HttpExposer,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
)
from ._metrics import (
    AgeGauge,
    Counter,
    DistributionSummary,
    Gauge,
    Histogram,
    Info,
    MaxGauge,
    NativeHistogram,
    PercentileDistributionSummary,
    PercentileTimer,
    Registry,
    StateSet,
    Summary,
    Timer,
)
from ._wsgi import make_wsgi_app

__version__ = "0.1.0"

__all__ = [
    "AgeGauge", "AlreadyExistsError", "Counter", "DataLossError", "DistributionSummary",
    "Error", "FailedPreconditionError", "Gauge", "Heap", "Histogram", "HttpExposer", "Info",
    "InternalError", "InvalidArgumentError", "MaxGauge", "NativeHistogram", "NotFoundError",
    "OutOfRangeError",
    "PercentileDistributionSummary", "PercentileTimer", "PermissionDeniedError", "Registry",
    "ResourceExhaustedError", "StateSet", "Summary", "Timer", "UnavailableError", "expose",
    "make_wsgi_app", "start_http_server",
]


def _attach_worker(self):
    """Claims a stable worker id (0..max_workers-1) for this process: the lowest one whose
    previous owner is gone, so a respawned worker takes its predecessor's. Idempotent. Call it
    in each worker after fork; forked children of a process that attached claim their own id
    automatically."""
    return _pickling.attach(self)


def _detach_worker(self):
    """Gives the worker id back early (it is reclaimed when the process dies anyway)."""
    _pickling.detach(self)


# The Python layer remembers the heap a process attached to, for its forked children, and
# pickles heaps by name.
Heap.attach_worker = _attach_worker
Heap.detach_worker = _detach_worker
Heap.__reduce__ = _pickling.reduce_heap


def expose(heap, format="openmetrics", *, created_samples=True, utf8_names=False):
    """One exposition of every family of `heap` as bytes: format 'openmetrics', 'prometheus'
    (text 0.0.4) or 'protobuf' (delimited io.prometheus.client.MetricFamily messages).

    ``created_samples=False`` leaves out the ``_created`` samples. Names outside the legacy
    character set (registries made with ``utf8_names=True``) are escaped with underscores unless
    ``utf8_names=True`` asks for them as they are (quoted), which only UTF-8-aware parsers read.
    On a writable heap it resets the maxima (max gauges, timers' max), as a scrape does."""
    return _shmetrics.expose(heap, format, created_samples=created_samples,
                             utf8_names=utf8_names)


def start_http_server(heap, port=9464, addr="127.0.0.1", *, process_metrics=True,
                      web_config_file=None, created_samples=True):
    """Starts the embedded HTTP exposer (/metrics) on a C++ thread and returns it.

    Start it in the master only, before forking workers; forked workers never serve it.
    ``heap`` may be a list of heaps. ``port=0`` picks a free port (see ``.port``).
    ``web_config_file`` is a Prometheus exporter web configuration (TLS, basic auth).
    ``created_samples=False`` leaves out the ``_created`` samples.
    Call ``.close()`` to stop it."""
    heaps = list(heap) if isinstance(heap, (list, tuple)) else [heap]
    return HttpExposer(heaps, address=addr, port=port, process_metrics=process_metrics,
                       web_config_file=web_config_file, created_samples=created_samples)
