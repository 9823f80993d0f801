"""shmetrics.prometheus_client across processes: os.fork, multiprocessing (fork, forkserver,
spawn; the heap from SHMETRICS_HEAP or from pickled metrics), and a real gunicorn serving a
prometheus_client multiprocess app whose only change is the import."""

import http.client
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import shmetrics.prometheus_client as pc
from shmetrics.prometheus_client import multiprocess
from conftest_dropin import count_in_child, count_pickled, heap, samples_of  # noqa: F401

DEADLINE = 60  # seconds, for every wait on another process


def scrape():
    registry = pc.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return pc.generate_latest(registry)


def test_os_fork_children_add_up(heap):
    c = pc.Counter("forked_total", "d", ["who"], registry=None)
    g = pc.Gauge("per_worker", "d", registry=None)
    s = pc.Gauge("summed", "d", multiprocess_mode="sum", registry=None)
    g.set(-1)
    pids = []
    release_r, release_w = os.pipe()  # the children live together until the parent closes it
    for k in range(3):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(release_w)
                os.read(release_r, 1)
                for _ in range(1000):
                    c.labels("child").inc()
                g.set(heap.worker_id)  # forked children are workers of their own
                s.inc(10)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(release_r)
    os.close(release_w)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    c.labels("parent").inc()
    text = scrape()
    assert samples_of(text, "forked") == {
        ("forked_total", (("who", "child"),)): 3000.0,
        ("forked_total", (("who", "parent"),)): 1.0}
    per_worker = samples_of(text, "per_worker")
    parent = str(heap.worker_id)
    assert len(per_worker) == 4  # the parent and three children, each its worker_id
    for (_, labels), value in per_worker.items():
        assert value == (-1 if labels[0][1] == parent else float(labels[0][1]))
    assert samples_of(text, "summed") == {("summed", ()): 30.0}


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_pool_adds_up(heap, method):
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(3) as pool:
        pids = pool.map(count_in_child, [300] * 6)
    assert len(pids) == 6
    text = scrape()
    assert samples_of(text, "jobs") == {("jobs_total", (("kind", "a"),)): 1800.0}
    hist = samples_of(text, "job_seconds")
    assert hist[("job_seconds_count", ())] == 1800
    assert hist[("job_seconds_bucket", (("le", "1.0"),))] == 1200  # the 0s and 1s of 0,1,2,...
    assert hist[("job_seconds_sum", ())] == 1800.0


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_pickled_metrics_carry_the_heap(heap, method, monkeypatch):
    # The children have no SHMETRICS_HEAP: they find the heap in the metrics they unpickle.
    c = pc.Counter("carried_total", "d", ["kind"], registry=None)
    monkeypatch.delenv("SHMETRICS_HEAP")
    ctx = multiprocessing.get_context(method)
    processes = [ctx.Process(target=count_pickled, args=(c.labels("a"), c, 250))
                 for _ in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(DEADLINE)
        assert p.exitcode == 0
    with ctx.Pool(2) as pool:
        pool.starmap(count_pickled, [(c.labels("a"), c, 100)] * 2)
    assert samples_of(scrape(), "carried") == {
        ("carried_total", (("kind", "a"),)): 950.0,
        ("carried_total", (("kind", "b"),)): 950.0}


APP = '''
# A typical prometheus_client multiprocess app; the only change is the import.
from shmetrics.prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter,
                                         Gauge, Histogram, generate_latest, multiprocess)

REQUESTS = Counter("app_requests_total", "Requests", ["path"])
LATENCY = Histogram("app_request_seconds", "Latency", ["path"])
IN_PROGRESS = Gauge("app_in_progress", "In progress", multiprocess_mode="livesum")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/metrics":
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST),
                                  ("Content-Length", str(len(data)))])
        return [data]
    with IN_PROGRESS.track_inprogress(), LATENCY.labels(path).time():
        REQUESTS.labels(path).inc()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]
'''


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=DEADLINE)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(self._path)


def get(sock_path, path):
    conn = UnixHTTPConnection(sock_path)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_gunicorn_serves_every_workers_counts(heap, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    sock_path = str(tmp_path / "gunicorn.sock")
    env = dict(os.environ, SHMETRICS_HEAP=heap.name)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", "unix:" + sock_path,
         "--chdir", str(tmp_path), "--log-level", "warning", "app:app"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                if get(sock_path, "/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.05)
        for i in range(59):
            assert get(sock_path, f"/p{i % 3}") == (200, b"ok\n")
        # Both workers booted (each is a worker of the heap, with its process metrics): wait
        # for the second if it is still importing the app.
        while True:
            status, body = get(sock_path, "/metrics")
            assert status == 200
            workers = {labels for (_, labels) in samples_of(body, "process_cpu_seconds")}
            if len(workers) >= 2:
                break
            assert time.monotonic() < deadline, body.decode()
            time.sleep(0.05)
        requests = samples_of(body, "app_requests")
        assert requests == {("app_requests_total", (("path", "/ready"),)): 1.0,
                            ("app_requests_total", (("path", "/p0"),)): 20.0,
                            ("app_requests_total", (("path", "/p1"),)): 20.0,
                            ("app_requests_total", (("path", "/p2"),)): 19.0}
        latency = samples_of(body, "app_request_seconds")
        assert latency[("app_request_seconds_count", (("path", "/p0"),))] == 20
        assert samples_of(body, "app_in_progress") == {("app_in_progress", ()): 0.0}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        server.stdout.close()
