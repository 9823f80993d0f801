"""shmetrics.prometheus_client: a drop-in for prometheus_client 0.16 whose metrics live in a
shmetrics heap, shared by every process (gunicorn workers, multiprocessing children, unrelated
processes).

Change the import and keep the code::

    from shmetrics.prometheus_client import Counter, Histogram, CollectorRegistry, \\
        generate_latest, multiprocess
    REQUESTS = Counter("requests", "Requests served", ["method"])
    REQUESTS.labels("GET").inc()
    ...
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    body = generate_latest(registry)          # every process's values

A family holds at most SHMETRICS_MAX_CHILDREN label sets (default 10,000; prometheus_client has
no limit, a heap has a size); past it new label sets share the family's ``__overflow__`` child,
counted in shmetrics_series_overflow_total.

The heap: the environment variable SHMETRICS_HEAP names it (a name in /dev/shm, or a path
starting with '/'); it is opened, or created when missing, when the first metric is created.
Or call set_heap(heap_or_name) in code before the first metric. Without either, creating a
metric raises RuntimeError. Every process that uses the heap becomes one of its workers
(shmetrics's worker id); forked children claim their own id, spawned ones open the heap from
SHMETRICS_HEAP or from the metrics they unpickle. The heap outlives the processes: remove it
(shmetrics.Heap.remove) when the service stops, or counts go on from the previous run, as with
an uncleaned PROMETHEUS_MULTIPROC_DIR.

Counter, Gauge, Histogram, Summary, Info and Enum take prometheus_client's arguments and names
(namespace_subsystem_name, the unit suffix, a counter's _total dropped), validate them with its
ValueError messages, and have its methods. They derive from shmetrics.Counter, ... so inc, dec,
set, observe and labels run natively. Metrics pickle (multiprocessing arguments under any start
method).

Where it differs from prometheus_client, and why:

- The values are every process's: an exposition in any process shows the sum of every
  process's counters and histograms; that is the point.
- Gauges follow ``multiprocess_mode`` always, not only in multiprocess mode: 'all' (the
  default) gives one series per worker labelled ``worker_id`` (prometheus_client: ``pid``);
  'sum', 'min', 'max', 'mostrecent' and their 'live' forms combine them; 'shared' (an addition)
  keeps one value every process updates. Gauge.set_function raises NotImplementedError (a
  function lives in one process; prometheus_client ignores it in multiprocess mode).
- A family lives in the heap, not in a registry: ``registry=None``, or a registry that is never
  scraped, still puts it in the heap, and registering the same definition again (in any process)
  gives the same series. Within one CollectorRegistry a second registration of a name still raises
  prometheus_client's "Duplicated timeseries" ValueError; a definition that conflicts with the
  heap's (another type or label names under the same name, possibly from another process) raises
  ValueError too. unregister() takes a metric out of a registry's exposition, not out of the
  heap.
- generate_latest(registry) shows, for a drop-in CollectorRegistry, the heap's families of the
  metrics registered in it, or with a MultiProcessCollector (or HeapCollector) in it every family
  of the heap, including shmetrics's own (shmetrics_*) and each worker's process metrics
  (process_*, labelled worker_id); other collectors registered in it are rendered by
  prometheus_client. The default REGISTRY has no process/platform/gc collectors. The Prometheus
  0.0.4 text has no ``_created`` samples; the OpenMetrics exposition
  (generate_latest_openmetrics, or make_wsgi_app with an OpenMetrics Accept header) has them, and
  exemplars.
- remove() and clear() act on the heap, in every process; remove() of a series that does not
  exist raises KeyError, as prometheus_client's.
- Info: the keys of the first info() become label names in the heap, so later calls must use the
  same keys (ValueError otherwise); each call replaces the value this process set. The family
  appears at the first info(). Enum: a new series starts in the first state (a series another
  process already set keeps its state).
- start_http_server() starts shmetrics's native exposer (a C++ thread) on the whole heap and
  returns it (``.port``, ``.close()``); start_wsgi_server() serves make_wsgi_app(registry) from
  Python. multiprocess.mark_process_dead() does nothing: shmetrics tracks dead workers itself.
- ``_labelvalues`` (prometheus_client's internal constructor argument) raises ValueError; use
  labels().

To keep existing prometheus_client code that scrapes a real prometheus_client registry, register
a HeapCollector in it: ``prometheus_client.REGISTRY.register(HeapCollector())``, or pass the real
registry to multiprocess.MultiProcessCollector.
"""

from . import multiprocess
from ._heap import get_heap, set_heap
from .exposition import (
    CONTENT_TYPE_LATEST,
    OPENMETRICS_CONTENT_TYPE_LATEST,
    choose_encoder,
    generate_latest,
    generate_latest_openmetrics,
    make_wsgi_app,
    start_http_server,
    start_wsgi_server,
    write_to_textfile,
)
from .metrics import Counter, Enum, Gauge, Histogram, Info, Summary
from .registry import REGISTRY, CollectorRegistry, HeapCollector

__all__ = (
    "CONTENT_TYPE_LATEST", "CollectorRegistry", "Counter", "Enum", "Gauge", "HeapCollector",
    "Histogram", "Info", "OPENMETRICS_CONTENT_TYPE_LATEST", "REGISTRY", "Summary",
    "choose_encoder", "generate_latest", "generate_latest_openmetrics", "get_heap",
    "make_wsgi_app", "multiprocess", "set_heap", "start_http_server", "start_wsgi_server",
    "write_to_textfile",
)
