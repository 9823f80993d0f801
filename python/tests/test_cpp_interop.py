"""A C++ program (python/tests/cpp_peer.cc, exec'd) and forked Python workers update the same
families of one heap at the same time: the counts add up exactly, and each side reads what the
other wrote."""

import os
import subprocess
from pathlib import Path

import pytest

import shmetrics
from test_gunicorn_support import remove_heap, sample_value, unique_name

ROUNDS = 100000
PY_WORKERS = 3


def peer_binary():
    build = os.environ.get("SHMETRICS_BINARY_DIR")
    if not build:
        pytest.skip("SHMETRICS_BINARY_DIR (the CMake build directory) is not set")
    path = Path(build) / "python" / "tests" / "cpp_peer"
    assert path.exists(), f"{path} is missing: build the target cpp_peer"
    return str(path)


@pytest.fixture
def heap():
    name = unique_name("interop")
    h = shmetrics.Heap.create(name)
    yield h
    remove_heap(name)


def families(registry):
    # The same definitions as cpp_peer's; the counter's label names in the other order.
    jobs = registry.counter("interop_jobs", "Jobs done, by either language", ["kind", "source"])
    hot = registry.counter("interop_hot", "A striped counter", striped=True)
    latency = registry.histogram("interop_latency", "Latency, by either language", ["kind"],
                                 unit="seconds", buckets=[0.1, 1, 10])
    return jobs, hot, latency


def start_peer(binary, heap, attach):
    args = [binary, "--heap", heap.name, "--updates", str(ROUNDS)] + (["--attach"] if attach
                                                                      else [])
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # bounded: the peer prints "ready" or exits
    assert line == "ready\n", line + p.communicate(timeout=30)[1]
    return p


def fork_py_worker(heap, go_fd):
    """A forked Python worker: attaches, waits for the go byte, does ROUNDS rounds."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            heap.attach_worker()
            jobs, hot, latency = families(shmetrics.Registry(heap))
            child = jobs.labels(kind="mail", source="shared")
            mail = latency.labels("mail")
            if os.read(go_fd, 1) == b"g":
                for _ in range(ROUNDS):
                    child.inc()
                    hot.inc(2)
                    mail.observe(0.05)
                    mail.observe(0.5)
                    mail.observe(5)
                code = 0
        finally:
            os._exit(code)
    return pid


def test_cpp_and_python_workers_add_up_in_the_same_families(heap):
    binary = peer_binary()
    registry = shmetrics.Registry(heap)
    jobs, hot, latency = families(registry)  # the master registers first, as a server does
    r, w = os.pipe()
    workers = [fork_py_worker(heap, r) for _ in range(PY_WORKERS)]
    os.close(r)
    peers = [start_peer(binary, heap, attach=True), start_peer(binary, heap, attach=False)]
    # Everyone has registered: go, all at once.
    os.write(w, b"g" * PY_WORKERS)
    os.close(w)
    for p in peers:
        out, err = p.communicate("go\n", timeout=120)
        assert (p.returncode, out) == (0, "done\n"), err
    for pid in workers:
        _, status = os.waitpid(pid, 0)  # each does a bounded loop and exits
        assert os.waitstatus_to_exitcode(status) == 0

    writers = PY_WORKERS + len(peers)
    total = writers * ROUNDS
    # Read here (Python's collector) and by the C++ program (the C++ collector): the same.
    here = shmetrics.expose(heap, "prometheus").decode()
    there = subprocess.run([binary, "--heap", heap.name, "--expose"], capture_output=True,
                           text=True, timeout=60)
    assert there.returncode == 0, there.stderr
    for text in (here, there.stdout):
        assert sample_value(text, "interop_jobs_total", kind="mail", source="shared") == total
        assert sample_value(text, "interop_hot_total") == 2 * total
        assert sample_value(text, "interop_latency_seconds_count", kind="mail") == 3 * total
        for le, want in (("0.1", total), ("1.0", 2 * total), ("10.0", 3 * total),
                         ("+Inf", 3 * total)):
            assert sample_value(text, "interop_latency_seconds_bucket", kind="mail",
                                le=le) == want, (le, text)
        assert sample_value(text, "interop_latency_seconds_sum",
                            kind="mail") == pytest.approx(5.55 * total, rel=1e-9)
    # One series each: the label order of the definition does not make another.
    assert here.count("interop_jobs_total{") == 1
    # The master's handles read the workers' and the C++ processes' updates.
    assert jobs.labels(source="shared", kind="mail").value() == total
    assert hot.value() == 2 * total


def test_a_cpp_process_conflicting_with_a_python_family_is_refused(heap):
    binary = peer_binary()
    shmetrics.Registry(heap).gauge("interop_jobs", "Not a counter", ["kind", "source"])
    p = subprocess.run([binary, "--heap", heap.name, "--updates", "1"], input="go\n",
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "interop_jobs" in p.stderr and p.stdout == ""
