"""Running the example gunicorn server (examples/python) from tests: start, wait, scrape, stop.

A support module for test_gunicorn*.py and test_cpp_interop*.py (it holds no tests)."""

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import shmetrics

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "python"
_names = itertools.count()
# The asan configuration preloads the sanitizer runtime into the interpreter (python/tests/
# CMakeLists.txt).
SANITIZER_RUNTIME = "libasan" in os.environ.get("LD_PRELOAD", "")


def unique_name(tag):
    return f"test-{tag}-{os.getpid()}-{next(_names)}"


def wait_for(predicate, timeout, what):
    """Polls `predicate` until it returns something true, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def get(url, accept=None, timeout=30):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def remove_heap(name):
    try:
        shmetrics.Heap.remove(name)
    except shmetrics.NotFoundError:
        pass


def sample_value(text, name, **labels):
    """The value of one sample in Prometheus text, or None."""
    from prometheus_client.parser import text_string_to_metric_families
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


class Gunicorn:
    """The example app under real gunicorn, bound to a listening socket this test made (no
    fixed port: gunicorn takes it as fd://N), its exposer on port 0."""

    def __init__(self, tmp_path, workers=4, extra_args=(), heap=None):
        # gunicorn forks its workers from a master whose exposer threads are running. g++ 12's
        # ASan runtime does not lock its allocator around fork(), so a worker forked while one of
        # those threads allocates waits forever on the allocator's lock (seen: the old worker of
        # a SIGHUP never exits). glibc's malloc is fork-safe; these tests run in the other builds.
        if SANITIZER_RUNTIME:
            pytest.skip("a real gunicorn master forks with threads running; under the sanitizer "
                        "runtime a worker can hang in its allocator (see test_gunicorn_support)")
        self.dir = tmp_path
        self.heap = heap or unique_name("gunicorn")
        self.port_file = tmp_path / "metrics.port"
        self.block_dir = tmp_path / "block"
        self.block_dir.mkdir(exist_ok=True)
        self.log_path = tmp_path / "gunicorn.log"
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        fd = self.listener.fileno()
        env = dict(os.environ, SHMETRICS_HEAP=self.heap, METRICS_PORT="0",
                   METRICS_PORT_FILE=str(self.port_file), APP_BLOCK_DIR=str(self.block_dir),
                   PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(EXAMPLE / "gunicorn.conf.py"),
               "--bind", f"fd://{fd}", "--workers", str(workers), "--chdir", str(EXAMPLE),
               "--graceful-timeout", "10", "--timeout", "120", *extra_args, "gunicorn_app:app"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     pass_fds=[fd])
        self.listener.close()  # gunicorn has it now
        self.metrics_port = None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def metrics_url(self):
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def log_text(self):
        return self.log_path.read_text()

    def booted_pids(self):
        return [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", self.log_text())]

    def wait_ready(self, workers, timeout=60):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited {self.proc.returncode}:\n"
                                     f"{self.log_text()}")
            return self.port_file.exists() and len(self.booted_pids()) >= workers
        wait_for(ready, timeout, "gunicorn to boot its workers")
        self.metrics_port = int(self.port_file.read_text())

    def scrape(self, fmt="prometheus"):
        accept = ("application/openmetrics-text; version=1.0.0" if fmt == "openmetrics"
                  else "text/plain")
        return get(self.metrics_url(), accept=accept)

    def scrape_value(self, name, **labels):
        return sample_value(self.scrape(), name, **labels)

    def stop(self, timeout=60):
        """SIGTERM to the master; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise AssertionError(f"gunicorn did not stop:\n{self.log_text()}")
        self.log.close()
        return rc

    def close(self):
        """Best-effort cleanup after a failed test."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
            for pid in self.booted_pids():  # workers left behind, if still ours
                try:
                    if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if not self.log.closed:
            self.log.close()
        remove_heap(self.heap)
