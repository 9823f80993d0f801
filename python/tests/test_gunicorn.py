"""shmetrics.gunicorn: the server hooks, each scenario in a fresh interpreter (hooks() sets the
environment and module state of the process that calls it), and under real gunicorn with and
without --preload and with --check-config."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

import shmetrics
from test_gunicorn_support import (EXAMPLE, Gunicorn, get, remove_heap, sample_value,
                                   unique_name, wait_for)

PRELUDE = """
import os, sys, logging
import shmetrics, shmetrics.gunicorn as g
class Server:
    log = logging.getLogger("gunicorn.error")
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
"""


def run_py(code, timeout=60, **env):
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
                          env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=timeout)
    return proc


@pytest.fixture
def name():
    n = unique_name("hooks")
    yield n
    remove_heap(n)


def counter_of(heap_name, family="left_total"):
    heap = shmetrics.Heap.open(heap_name, read_only=True)
    return sample_value(shmetrics.expose(heap, "prometheus").decode(), family)


def test_hooks_create_the_heap_name_it_in_the_environment_and_remove_it_on_exit(name, tmp_path):
    port_file = tmp_path / "port"
    p = run_py(f"""
        h = g.hooks({name!r}, metrics_port=0, port_file={str(port_file)!r})
        assert sorted(h) == ["on_exit", "on_starting", "post_fork"]
        assert os.environ["SHMETRICS_HEAP"] == {name!r}
        assert g.heap().name == {name!r} and g.exposer() is None
        h["on_starting"](Server)
        port = g.metrics_port()
        assert port and int(open({str(port_file)!r}).read()) == port
        shmetrics.Registry(g.heap()).counter("jobs", "Jobs").inc(3)
        import urllib.request
        body = urllib.request.urlopen(f"http://127.0.0.1:{{port}}/metrics").read().decode()
        assert "jobs_total 3" in body, body
        h["on_exit"](Server)
        assert g.heap() is None and g.exposer() is None
        assert not os.path.exists({str(port_file)!r})
        try:
            shmetrics.Heap.open({name!r})
            raise SystemExit("the heap is still there")
        except shmetrics.NotFoundError:
            pass
        print("ok")
    """)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"shmetrics: heap {name}, metrics on http://127.0.0.1:" in p.stdout
    assert p.stdout.endswith("ok\n")


def test_a_heap_left_behind_by_a_previous_run_is_replaced_by_a_fresh_one(name):
    # A run whose master died without removing its heap (a SIGKILL, say).
    p = run_py(f"""
        h = shmetrics.Heap.create({name!r})
        shmetrics.Registry(h).counter("left", "Left behind").inc(7)
        os._exit(0)
    """)
    assert p.returncode == 0, p.stderr
    assert counter_of(name) == 7
    p = run_py(f"""
        g.hooks({name!r})
        print(shmetrics.expose(g.heap(), "prometheus").decode())
        os._exit(0)  # leave it for the test to read
    """)
    assert p.returncode == 0, p.stderr
    assert "left_total" not in p.stdout
    assert counter_of(name) is None  # the old values are gone


def test_a_heap_whose_creator_runs_is_left_alone_and_the_server_refuses_to_start(name):
    heap = shmetrics.Heap.create(name)  # this process runs: another server, for the hooks
    shmetrics.Registry(heap).counter("left", "In use").inc(5)
    p = run_py(f"""
        try:
            g.hooks({name!r})
        except shmetrics.AlreadyExistsError as e:
            print("refused:", e)
    """)
    assert p.returncode == 0, p.stderr
    assert "refused:" in p.stdout and "is running" in p.stdout and "another name" in p.stdout
    assert counter_of(name) == 5


def test_the_config_executed_again_keeps_the_heap_and_its_values(name):
    p = run_py(f"""
        g.hooks({name!r})
        first = g.heap()
        shmetrics.Registry(first).counter("kept", "Kept").inc(2)
        g.hooks({name!r})  # gunicorn re-reads its config on SIGHUP
        assert g.heap() is first
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            g.hooks({name!r} + "-renamed", metrics_port=1)
        assert g.heap() is first and "until the server restarts" in str(caught[0].message)
        assert {name!r} + "-renamed" not in shmetrics.Heap.list()
        print(shmetrics.expose(first, "prometheus").decode())
    """)
    assert p.returncode == 0, p.stderr
    assert "kept_total 2" in p.stdout


def test_name_defaults_to_the_environment(name):
    p = run_py("""
        g.hooks()
        print(g.heap().name)
    """, SHMETRICS_HEAP=name)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == name


def test_post_fork_attaches_the_worker_and_only_the_master_removes_the_heap(name):
    # A worker exits through sys.exit (as gunicorn's do), running atexit handlers: the heap
    # stays. The master exits without on_exit (a failed start): the heap goes.
    p = run_py(f"""
        h = g.hooks({name!r}, metrics_port=0)
        h["on_starting"](Server)
        pid = os.fork()
        if pid == 0:
            h["post_fork"](Server, None)
            assert g.exposer() is None and g.metrics_port() is None
            shmetrics.Registry(shmetrics.Heap.open({name!r})).gauge(
                "wid", "Worker id", mode="all").set(g.heap().worker_id + 1)
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        print(shmetrics.expose(g.heap(), "prometheus").decode())
    """)
    assert p.returncode == 0, p.stdout + p.stderr
    assert 'wid{worker_id="0"} 1' in p.stdout
    with pytest.raises(shmetrics.NotFoundError):
        shmetrics.Heap.open(name)


@pytest.mark.parametrize("preload", [False, True], ids=["fork", "preload"])
def test_real_gunicorn_serves_the_app_metrics_from_the_master(tmp_path, preload):
    server = Gunicorn(tmp_path, workers=2, extra_args=["--preload"] if preload else [])
    try:
        server.wait_ready(2)
        for _ in range(25):
            assert get(server.url("/items/7")) == '{"item":7}\n'
        assert sample_value(server.scrape(), "app_http_requests_total", method="GET",
                            route="/items/<int:item>", code="200") == 25
        # SIGHUP: gunicorn reads the config again and replaces its workers; the heap stays.
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(server.booted_pids()) == 4, 60, "gunicorn to replace its workers")
        for _ in range(5):
            assert get(server.url("/items/7")) == '{"item":7}\n'
        assert sample_value(server.scrape(), "app_http_requests_total",
                            route="/items/<int:item>") == 30
        # The new workers start before the old ones stop: they claim the next free ids.
        assert json.loads(get(server.url("/whoami")))["worker_id"] in range(4)
        assert server.stop() == 0
        log = server.log_text()
        assert log.count("Worker exiting") == 4, log
        assert "Traceback" not in log, log
        # gunicorn repeats its SIGTERM to a replaced worker until it has reaped it, so one may
        # die of it while it exits; nothing else kills a worker.
        old = set(server.booted_pids()[:2])
        for pid, sig in re.findall(r"Worker with pid (\d+) was terminated due to signal (\d+)",
                                   log):
            assert int(pid) in old and sig == "15", log
        with pytest.raises(shmetrics.NotFoundError):
            shmetrics.Heap.open(server.heap)
    finally:
        server.close()


def test_check_config_leaves_no_heap_behind():
    heap = unique_name("check")
    p = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "-c",
                        str(EXAMPLE / "gunicorn.conf.py"), "--chdir", str(EXAMPLE),
                        "gunicorn_app:app"],
                       env=dict(os.environ, SHMETRICS_HEAP=heap), capture_output=True,
                       text=True, timeout=60)
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        assert heap not in shmetrics.Heap.list()
    finally:
        remove_heap(heap)
