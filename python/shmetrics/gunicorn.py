"""gunicorn server hooks: one shared heap for the master and every worker, served by the master.

In a gunicorn config file (gunicorn.conf.py), one line:

    from shmetrics.gunicorn import hooks; globals().update(hooks(metrics_port=9464))

or, with every option:

    from shmetrics.gunicorn import hooks
    globals().update(hooks(
        name="shop",                    # the heap, /dev/shm/shmetrics.shop
        metrics_addr="127.0.0.1",       # the embedded exposer: http://127.0.0.1:9464/metrics
        metrics_port=0,                 # 0 picks a free port: logged, and written to port_file
        port_file="/run/shop/metrics.port",
    ))

and in the app, the native API on the heap named by SHMETRICS_HEAP:

    heap = shmetrics.Heap.open(os.environ["SHMETRICS_HEAP"])
    requests = shmetrics.Registry(heap).counter("http_requests", "Requests", ["code"])

(``shmetrics.prometheus_client`` reads SHMETRICS_HEAP by itself.)

What happens, and when:

- When gunicorn executes the config file (in the master, before it imports the app, with or
  without ``--preload``), ``hooks()`` creates the heap and puts its name in
  ``os.environ["SHMETRICS_HEAP"]``, which the workers inherit. A heap of that name left behind
  by a previous run whose master is gone (killed, say, before it could remove it) is removed
  first, so a run never starts with the counters of the last one. A heap whose creator still
  runs (another gunicorn using the same name) is not touched: ``hooks()`` raises
  ``shmetrics.AlreadyExistsError`` and gunicorn refuses to start. Executing the config file
  again in the same master (gunicorn re-reads it on SIGHUP) keeps the heap, its values and the
  exposer; a new name, address or port there takes a restart (a RuntimeWarning says so).
- ``on_starting`` (the master, after daemonizing, before the first fork) starts the embedded
  exposer (``shmetrics.start_http_server``), logs its address and writes the port to
  ``port_file`` if given. Workers never serve it.
- ``post_fork`` (each worker, before it loads the app) claims the worker's id in the heap
  (``heap.attach_worker()``): a worker gunicorn respawns after a crash takes the id of the one
  it replaces, so per-worker series keep their ``worker_id`` label.
- ``on_exit`` (the master, on shutdown) stops the exposer, removes the heap and the port file.
  A master that exits before that hook (a failed bind, ``--check-config``) removes them too.

The hooks are returned as a dict (``on_starting``, ``post_fork``, ``on_exit``) of gunicorn
server hooks. To add your own, call ours from yours:

    h = hooks(metrics_port=9464)
    def post_fork(server, worker):
        h["post_fork"](server, worker)
        ...
    on_starting, on_exit = h["on_starting"], h["on_exit"]

The running master's heap and exposer are also at ``shmetrics.gunicorn.heap()`` and
``shmetrics.gunicorn.exposer()`` (None before they exist or after ``on_exit``).

Limits: with ``--daemon`` the heap is created before gunicorn daemonizes, so its header names
the process that exited as its creator: a second server started with the same name then takes
the heap for a stale one. Give each daemonized server its own name. A SIGUSR2 upgrade (a new
master beside the old) needs another name too, or it refuses to start.
"""

import atexit
import os
import threading
import warnings

from . import _shmetrics as _native
from . import start_http_server

__all__ = ["hooks", "heap", "exposer", "metrics_port", "ENV_HEAP"]

ENV_HEAP = "SHMETRICS_HEAP"
DEFAULT_NAME = "gunicorn"

_lock = threading.Lock()
_state = None  # the _Master of this process, if hooks() made one here


class _Master:
    """The heap and exposer of one gunicorn master (the process that called hooks())."""

    def __init__(self, name, metrics_addr, metrics_port, port_file, process_metrics,
                 web_config_file, heap_options):
        self.pid = os.getpid()
        self.name = name
        self.metrics_addr = metrics_addr
        self.metrics_port = metrics_port
        self.port_file = port_file
        self.process_metrics = process_metrics
        self.web_config_file = web_config_file
        self.heap = _create_fresh(name, heap_options)
        self.exposer = None
        self.removed = False
        os.environ[ENV_HEAP] = name
        atexit.register(self.close)

    def mine(self):
        return os.getpid() == self.pid

    def start_exposer(self, log=None):
        if not self.mine() or self.exposer is not None or self.removed:
            return
        try:
            self.exposer = start_http_server(self.heap, port=self.metrics_port,
                                             addr=self.metrics_addr,
                                             process_metrics=self.process_metrics,
                                             web_config_file=self.web_config_file)
        except Exception as e:
            if log is not None:
                log.error("shmetrics: cannot serve metrics on %s:%s: %s", self.metrics_addr,
                          self.metrics_port, e)
            raise
        port = self.exposer.port
        if self.port_file:
            _write_atomically(self.port_file, f"{port}\n")
        if log is not None:
            log.info("shmetrics: heap %s, metrics on http://%s:%d/metrics", self.name,
                     _host_for_url(self.metrics_addr), port)

    def close(self):
        """Stops the exposer and removes the heap and port file; only in the master, once."""
        if not self.mine() or self.removed:
            return
        self.removed = True
        if self.exposer is not None:
            self.exposer.close()
            self.exposer = None
            if self.port_file:
                try:
                    os.unlink(self.port_file)
                except FileNotFoundError:
                    pass
        try:
            _native.Heap.remove(self.name)
        except _native.NotFoundError:
            pass  # someone removed it already (`shmetrics rm`)


def _create_fresh(name, heap_options):
    """Creates heap `name`, first removing one of that name whose creator no longer runs."""
    try:
        return _native.Heap.create(name, **heap_options)
    except _native.AlreadyExistsError as e:
        # The message says whether the creator still runs ("its creator, pid N, is running").
        if "is running" in str(e):
            raise _native.AlreadyExistsError(
                f"{e}: another server uses this heap; give this one another name "
                f"(hooks(name=...) or {ENV_HEAP})") from None
    # Left behind by a run that ended without removing it (or not a heap this version can
    # read): its values are not this run's.
    try:
        _native.Heap.remove(name)
    except _native.NotFoundError:
        pass
    return _native.Heap.create(name, **heap_options)


def _write_atomically(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _host_for_url(addr):
    return f"[{addr}]" if ":" in addr else addr


def hooks(name=None, *, metrics_addr="127.0.0.1", metrics_port=9464, port_file=None,
          process_metrics=True, web_config_file=None, **heap_options):
    """Creates the heap now and returns gunicorn's server hooks for it, as a dict.

    Call it from the config file: ``globals().update(hooks(metrics_port=9464))``.

    name: the heap's name; default: $SHMETRICS_HEAP if set, else "gunicorn".
    metrics_addr, metrics_port: where the master serves /metrics (default 127.0.0.1:9464;
        port 0 picks a free one, logged at start and written to ``port_file``).
    port_file: a file that gets the exposer's port (one line) once it serves; removed on exit.
    process_metrics, web_config_file: as for ``shmetrics.start_http_server``.
    heap_options: passed to ``shmetrics.Heap.create`` (max_size, initial_size, mode,
        max_workers; max_workers must be at least gunicorn's number of workers).

    Raises shmetrics.AlreadyExistsError when a running process (another server) created a heap
    of that name, and the errors of Heap.create.
    """
    global _state
    if name is None:
        name = os.environ.get(ENV_HEAP) or DEFAULT_NAME
    with _lock:
        state = _state
        if state is not None and state.mine() and not state.removed:
            # gunicorn re-reads the config on SIGHUP: the running heap and exposer stay, with
            # their values (the workers it respawns use them).
            if (name, metrics_addr, int(metrics_port), port_file) != (
                    state.name, state.metrics_addr, state.metrics_port, state.port_file):
                warnings.warn(
                    f"shmetrics.gunicorn: the heap {state.name!r} and its exposer on "
                    f"{state.metrics_addr}:{state.metrics_port} stay until the server restarts",
                    RuntimeWarning, stacklevel=2)
        else:
            state = _Master(name, metrics_addr, int(metrics_port), port_file, process_metrics,
                            web_config_file, heap_options)
            _state = state

    def on_starting(server):
        state.start_exposer(server.log)

    def post_fork(server, worker):
        state.heap.attach_worker()

    def on_exit(server):
        state.close()

    return {"on_starting": on_starting, "post_fork": post_fork, "on_exit": on_exit}


def heap():
    """The heap hooks() created in this master (workers inherit it), or None."""
    s = _state
    return None if s is None or s.removed else s.heap


def exposer():
    """The master's running exposer, or None (in workers, before on_starting, after on_exit)."""
    s = _state
    return s.exposer if s is not None and s.mine() else None


def metrics_port():
    """The port the master's exposer serves, or None when it does not serve here."""
    e = exposer()
    return None if e is None else e.port
