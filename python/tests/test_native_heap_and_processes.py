"""Heaps, pickling, multiprocessing, unrelated processes, the exposer and the WSGI app."""

import gzip
import multiprocessing
import os
import pickle
import subprocess
import sys
import urllib.request

import pytest

import shmetrics
from conftest import unique_name
from util import families, fork_call, sample_value, wait_pid


# ---- heaps ------------------------------------------------------------------------------------

def test_heap_lifecycle(heap_name):
    with pytest.raises(shmetrics.NotFoundError):
        shmetrics.Heap.open(heap_name)
    heap = shmetrics.Heap.create(heap_name, max_size=8 << 20, initial_size=1 << 20,
                                 max_workers=4)
    assert heap.name == heap_name and not heap.read_only
    assert heap_name in shmetrics.Heap.list()
    assert repr(heap) == f"<shmetrics.Heap '{heap_name}'>"
    usage = heap.usage()
    assert usage["max_bytes"] == 8 << 20 and 0 < usage["used_bytes"] <= usage["committed_bytes"]
    with pytest.raises(shmetrics.AlreadyExistsError, match="is running"):
        shmetrics.Heap.create(heap_name)
    again = shmetrics.Heap.open_or_create(heap_name)
    shmetrics.Registry(heap, read_environment=False).counter("c", "C").inc()
    assert b"c_total 1" in shmetrics.expose(again, "prometheus")
    shmetrics.Heap.remove(heap_name)
    assert heap_name not in shmetrics.Heap.list()
    with pytest.raises(shmetrics.NotFoundError):
        shmetrics.Heap.remove(heap_name)
    # The removed heap keeps working for those who hold it.
    assert b"c_total 1" in shmetrics.expose(heap, "prometheus")


def test_bad_heap_names_and_options():
    for bad in ("", "a/b", "..", "."):
        with pytest.raises(ValueError):
            shmetrics.Heap.create(bad)
    with pytest.raises(ValueError):
        shmetrics.Heap.create(unique_name(), max_size=1)
    with pytest.raises(ValueError):
        shmetrics.Heap.create(unique_name(), max_workers=0)
    with pytest.raises(TypeError):
        shmetrics.Heap.create(unique_name(), 1 << 20)  # options are keyword-only


def test_heap_at_a_path_and_corrupt_files(tmp_path):
    path = str(tmp_path / "heap")
    heap = shmetrics.Heap.create_at_path(path)
    assert heap.name == path
    shmetrics.Registry(heap, read_environment=False).counter("c", "C").inc(2)
    opened = shmetrics.Heap.open_at_path(path, read_only=True)
    assert b"c_total 2" in shmetrics.expose(opened, "prometheus")
    shmetrics.Heap.remove_at_path(path)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a heap" * 1000)
    garbage.chmod(0o600)
    with pytest.raises(shmetrics.DataLossError):
        shmetrics.Heap.open_at_path(str(garbage))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    empty.chmod(0o600)
    with pytest.raises(shmetrics.Error):
        shmetrics.Heap.open_at_path(str(empty))
    shared = tmp_path / "shared"
    shmetrics.Heap.create_at_path(str(shared))
    shared.chmod(0o666)
    with pytest.raises(shmetrics.PermissionDeniedError):
        shmetrics.Heap.open_at_path(str(shared))
    shmetrics.Heap.open_at_path(str(shared), allow_shared_write=True)


def test_worker_ids(heap_name):
    heap = shmetrics.Heap.create(heap_name, max_workers=2)
    assert heap.worker_id is None
    assert heap.attach_worker() == 0
    assert heap.attach_worker() == 0  # idempotent
    assert shmetrics.Heap.open(heap_name).worker_id == 0  # through another Heap object

    def child():
        # A forked child of a worker claims its own id.
        assert heap.worker_id == 1, heap.worker_id

    assert wait_pid(fork_call(child)) == 0
    heap.detach_worker()
    assert heap.worker_id is None

    # Two live workers hold both ids: a third attach is refused.
    hold_r, hold_w = os.pipe()
    ready_r, ready_w = os.pipe()

    def holder():
        os.close(hold_w)
        os.close(ready_r)
        heap.attach_worker()
        os.write(ready_w, b"x")
        os.read(hold_r, 1)

    pids = [fork_call(holder) for _ in range(2)]
    os.close(ready_w)
    os.close(hold_r)
    assert len(os.read(ready_r, 1) + os.read(ready_r, 1)) == 2
    with pytest.raises(shmetrics.ResourceExhaustedError, match="max_workers"):
        heap.attach_worker()
    os.close(hold_w)
    assert [wait_pid(p) for p in pids] == [0, 0]
    os.close(ready_r)
    assert heap.attach_worker() in (0, 1)  # free again once they are gone
    heap.detach_worker()


def test_a_worker_of_one_heap_cannot_attach_to_another(heap):
    other_name = unique_name()
    other = shmetrics.Heap.create(other_name)
    try:
        def child():
            heap.attach_worker()
            try:
                other.attach_worker()
            except shmetrics.FailedPreconditionError as e:
                assert other_name in str(e)
            else:
                raise AssertionError("attached to two heaps")

        assert wait_pid(fork_call(child)) == 0
    finally:
        shmetrics.Heap.remove(other_name)


# ---- pickling and multiprocessing -------------------------------------------------------------

def test_pickle_round_trip_keeps_identity_of_series(heap, registry):
    c = registry.counter("jobs", "Jobs", ["kind"])
    h = registry.histogram("sizes", "Sizes", buckets=[1, 2])
    child = c.labels("a")
    heap2, c2, child2, h2 = pickle.loads(pickle.dumps((heap, c, child, h)))
    assert heap2.name == heap.name
    assert c2.name == "jobs" and c2.label_names == ("kind",)
    child2.inc(5)
    c2.labels("b").inc()
    h2.observe(1.5)
    assert child.value() == 5 and c.labels("b").value() == 1 and h.count() == 1
    r2 = pickle.loads(pickle.dumps(registry))
    assert r2.counter("jobs", "Jobs", ["kind"]).labels("a").value() == 5
    unregistered = shmetrics.Counter()
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(unregistered)


def _pool_work(args):
    counter, histogram, n = args
    worker = counter.registry.heap.worker_id
    for i in range(n):
        counter.labels(kind="pool").inc()
        histogram.observe(i % 3)
    return os.getpid(), worker


def _process_work(counter, n, queue):
    counter.registry.heap.attach_worker()  # a forked child of a non-worker is none
    for _ in range(n):
        counter.inc()
    queue.put(counter.registry.heap.worker_id)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_start_methods_add_up(heap, registry, method):
    ctx = multiprocessing.get_context(method)
    counter = registry.counter("pool_jobs", "Jobs", ["kind"])
    histogram = registry.histogram("pool_sizes", "Sizes", buckets=[0.5, 1.5])
    with ctx.Pool(3) as pool:
        results = pool.map(_pool_work, [(counter, histogram, 1000)] * 6)
    assert counter.labels("pool").value() == 6000
    assert histogram.count() == 6000
    assert sample_value(heap, "pool_sizes_bucket", le="0.5") == 6 * 334  # the zeros
    # Every pool process claimed a worker id of its own.
    ids = {pid: worker for pid, worker in results}
    assert None not in ids.values()
    assert len(set(ids.values())) == len(ids)

    plain = registry.counter("process_jobs_" + method, "Jobs")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_work, args=(plain, 500, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert plain.value() == 1000
    assert None not in (queue.get(timeout=10), queue.get(timeout=10))


def test_an_unrelated_process_attaches_by_name(heap_name, heap, registry):
    c = registry.counter("batch_jobs", "Jobs", ["kind"])
    c.labels("invoices").inc()
    code = (
        "import shmetrics, sys\n"
        "heap = shmetrics.Heap.open(sys.argv[1])\n"
        "heap.attach_worker()\n"
        "r = shmetrics.Registry(heap, read_environment=False)\n"
        "r.counter('batch_jobs', 'Jobs', ['kind']).labels('invoices').inc(41)\n"
        "try:\n"
        "    r.gauge('batch_jobs', 'Jobs', ['kind'])\n"
        "except shmetrics.AlreadyExistsError:\n"
        "    sys.exit(0)\n"
        "sys.exit(7)\n")
    done = subprocess.run([sys.executable, "-c", code, heap_name], timeout=120,
                          env=dict(os.environ), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert c.labels("invoices").value() == 42


def test_a_killed_worker_loses_nothing_completed(heap, registry):
    c = registry.counter("steps", "Steps")
    ready_r, ready_w = os.pipe()

    def worker():
        os.close(ready_r)
        heap.attach_worker()
        for _ in range(1000):
            c.inc()
        os.write(ready_w, b"x")
        while True:
            c.inc(0)  # busy in the heap when it dies

    pid = fork_call(worker)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"x"
    os.kill(pid, 9)
    assert wait_pid(pid) == -9
    os.close(ready_r)
    assert c.value() == 1000
    c.inc()  # nothing is left locked
    assert sample_value(heap, "steps_total") == 1001


# ---- the exposer and the WSGI app -------------------------------------------------------------

def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, dict(r.headers), r.read()


def test_http_exposer(heap, registry):
    registry.counter("served", "Served").inc(3)
    exposer = shmetrics.start_http_server(heap, port=0)
    try:
        assert exposer.port > 0 and not exposer.closed
        status, headers, body = _get(f"http://127.0.0.1:{exposer.port}/metrics",
                                     {"Accept": "application/openmetrics-text"})
        assert status == 200 and headers["Content-Type"].startswith(
            "application/openmetrics-text")
        assert b"served_total 3" in body and body.endswith(b"# EOF\n")
        status, headers, body = _get(f"http://127.0.0.1:{exposer.port}/metrics")
        assert b"served_total 3" in body and b"# EOF" not in body

        assert _get(f"http://127.0.0.1:{exposer.port}/-/healthy")[0] == 200
    finally:
        exposer.close()
    assert exposer.closed
    exposer.close()  # twice is fine
    with pytest.raises(ValueError):
        exposer.port


def test_http_exposer_leaves_out_created_samples_when_asked(heap, registry):
    registry.counter("served", "Served").inc()
    exposer = shmetrics.start_http_server(heap, port=0, created_samples=False)
    try:
        _, _, body = _get(f"http://127.0.0.1:{exposer.port}/metrics",
                          {"Accept": "application/openmetrics-text"})
        assert b"served_total 1" in body and b"_created" not in body
    finally:
        exposer.close()


def test_forked_children_exit_normally_and_never_serve(heap_name, heap):
    # A program (not pytest, whose forked children would go on running tests) starts the
    # exposer, forks children that update the heap and leave through sys.exit, which tears the
    # interpreter down and drops their copies of the exposer: none may hang, crash or stop the
    # parent's exposer, and the parent's still serves everything afterwards.
    code = (
        "import os, sys, urllib.request, shmetrics\n"
        "heap = shmetrics.Heap.open(sys.argv[1])\n"
        "c = shmetrics.Registry(heap, read_environment=False).counter('forked', 'F')\n"
        "exposer = shmetrics.start_http_server(heap, port=0)\n"
        "pids = []\n"
        "for _ in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        heap.attach_worker()\n"
        "        c.inc()\n"
        "        sys.exit(0)\n"
        "    pids.append(pid)\n"
        "codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]\n"
        "body = urllib.request.urlopen(f'http://127.0.0.1:{exposer.port}/metrics',\n"
        "                              timeout=30).read()\n"
        "exposer.close()\n"
        "print(codes, b'forked_total 3' in body)\n")
    done = subprocess.run([sys.executable, "-c", code, heap_name], timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 0, 0] True", done.stdout + done.stderr


def test_http_exposer_errors(heap):
    first = shmetrics.start_http_server([heap], port=0)
    try:
        with pytest.raises(shmetrics.UnavailableError, match=str(first.port)):
            shmetrics.start_http_server(heap, port=first.port)
        with pytest.raises(shmetrics.NotFoundError):
            shmetrics.start_http_server(heap, port=0, web_config_file="/nonexistent/web.yml")
    finally:
        first.close()


def _call(app, **environ):
    environ.setdefault("REQUEST_METHOD", "GET")
    out = {}

    def start_response(status, headers):
        out["status"], out["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return out["status"], out["headers"], body


def test_wsgi_app(heap, registry):
    registry.counter("wsgi_hits", "Hits").inc()
    m = registry.max_gauge("wsgi_max", "Max")
    m.set(4)
    app = shmetrics.make_wsgi_app(heap)
    status, headers, body = _call(app, REQUEST_METHOD="HEAD")
    assert status == "200 OK" and body == b""
    assert m.value() == 4  # HEAD leaves the maxima
    status, headers, body = _call(app, HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert b"wsgi_hits_total 1" in body and b"wsgi_max 4" in body
    status, headers, body = _call(app, HTTP_ACCEPT_ENCODING="gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"wsgi_hits_total 1" in gzip.decompress(body)
    status, headers, body = _call(app, HTTP_ACCEPT_ENCODING="gzip;q=0")
    assert "Content-Encoding" not in headers and b"wsgi_hits_total" in body
    status, headers, body = _call(app, REQUEST_METHOD="POST")
    assert status.startswith("405")
    assert families(heap)["wsgi_hits"].samples[0].value == 1
