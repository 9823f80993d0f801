"""End to end: real gunicorn with 4 workers serving examples/python/gunicorn_app.py under
`ab -k`, one worker SIGKILLed mid-load and respawned; the request counter is exact, the master's
scrape passes promtool and the OpenMetrics parser, and a real Prometheus scrapes it."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import urllib.request

import pytest

import shmetrics
from test_gunicorn_support import Gunicorn, get, remove_heap, sample_value, wait_for

AB = shutil.which("ab") or "/usr/bin/ab"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
REQUESTS = 20000

pytestmark = pytest.mark.skipif(
    not (os.access(AB, os.X_OK) and os.access(PROMTOOL, os.X_OK)
         and shutil.which("gunicorn") is not None),
    reason="needs gunicorn, apache2-utils (ab) and promtool")


class Blocker:
    """A /block request on a thread of its own: it holds one worker until released."""

    def __init__(self, server):
        self.server = server
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
        try:
            conn.request("GET", "/block?s=120")
            self.result = conn.getresponse().read().decode()
        except (OSError, http.client.HTTPException) as e:  # its worker was killed
            self.result = e
        finally:
            conn.close()

    def join(self):
        self.thread.join(130)
        assert not self.thread.is_alive()
        return self.result


def blocked(server):
    """{pid: worker_id} of the workers blocked in /block now."""
    out = {}
    for f in server.block_dir.glob("blocked.*"):
        if f.name.endswith(".tmp"):
            continue
        pid, wid = f.read_text().split()
        out[int(pid)] = int(wid)
    return out


def release(server, pids):
    for pid in pids:
        (server.block_dir / f"blocked.{pid}").unlink()


def ab_summary(out):
    def field(name):
        m = re.search(rf"^{name}:\s+(\d+)", out, re.M)
        return int(m.group(1)) if m else None
    return {"complete": field("Complete requests"), "failed": field("Failed requests"),
            "non2xx": field("Non-2xx responses") or 0}


def free_port():
    # Prometheus binds its own web port; the kernel picks one we release just before. If
    # another process takes it meanwhile Prometheus exits, and run_prometheus tries again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_prometheus(tmp_path, target, query, want):
    """A real Prometheus scraping `target` every second; returns (targets, result of `query`)
    once the target is up and the query returns `want`."""
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: shmetrics\n    static_configs:\n"
        f"      - targets: ['{target}']\n")
    for attempt in range(3):
        web = f"127.0.0.1:{free_port()}"
        log = open(tmp_path / f"prometheus-{attempt}.log", "w")
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / f'data-{attempt}'}",
             f"--web.listen-address={web}"], stdout=log, stderr=subprocess.STDOUT)
        state = {"targets": None, "query": None}

        def scraped():
            if prom.poll() is not None:
                return "exited"
            try:
                state["targets"] = json.loads(get(f"http://{web}/api/v1/targets", timeout=5))
                url = f"http://{web}/api/v1/query?query=" + urllib.request.quote(query)
                state["query"] = json.loads(get(url, timeout=5))
            except (OSError, ValueError):
                return False
            up = any(t["health"] == "up" for t in state["targets"]["data"]["activeTargets"])
            values = [r["value"][1] for r in state["query"]["data"]["result"]]
            return up and values == [want]

        try:
            outcome = wait_for(scraped, 60, f"Prometheus to scrape {target}")
        except AssertionError:
            log.flush()
            raise AssertionError(f"targets: {state['targets']}\nquery: {state['query']}\n"
                                 f"{(tmp_path / f'prometheus-{attempt}.log').read_text()[-3000:]}")
        finally:
            prom.terminate()
            try:
                prom.wait(30)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait(30)
            log.close()
        if outcome != "exited":
            return state["targets"], state["query"]
    raise AssertionError("Prometheus did not start (its web port was taken three times)")


@pytest.fixture
def server(tmp_path):
    s = Gunicorn(tmp_path, workers=4)
    yield s
    s.close()


def test_counts_are_exact_when_a_busy_worker_is_killed_and_the_scrape_is_valid(server,
                                                                               tmp_path):
    server.wait_ready(4)
    first = server.booted_pids()
    assert len(first) == 4

    # One worker is held in /block; ab runs against the three others.
    held = Blocker(server)
    victim_pid, victim_wid = next(iter(wait_for(lambda: blocked(server), 30,
                                                "a worker to block").items()))
    assert victim_pid in first

    ab = subprocess.Popen([AB, "-k", "-r", "-n", str(REQUESTS), "-c", "8", server.url("/")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = shmetrics.Heap.open(server.heap, read_only=True)

    def served():
        return sample_value(shmetrics.expose(reader, "prometheus").decode(),
                            "app_http_requests_total", route="/") or 0

    at_kill = wait_for(lambda: (lambda n: n >= 2000 and n)(served()), 60, "ab to get going")
    os.kill(victim_pid, signal.SIGKILL)
    assert at_kill < REQUESTS  # the kill landed mid-load
    out, _ = ab.communicate(timeout=120)
    assert ab.returncode == 0, out
    assert isinstance(held.join(), Exception)  # its worker died under it
    summary = ab_summary(out)
    assert summary == {"complete": REQUESTS, "failed": 0, "non2xx": 0}, out

    # gunicorn respawns the killed worker; the new one takes its worker id.
    wait_for(lambda: len(server.booted_pids()) == 5, 60, "gunicorn to respawn the worker")
    respawned = server.booted_pids()[4]
    (server.block_dir / f"blocked.{victim_pid}").unlink()  # its request never ended
    holders = [Blocker(server) for _ in range(4)]  # one per worker: each sync worker takes one
    ids = wait_for(lambda: len(blocked(server)) == 4 and blocked(server), 60,
                   "all four workers to block")
    release(server, ids)
    for h in holders:
        assert h.join() == "unblocked\n"
    assert set(ids) == (set(first) - {victim_pid}) | {respawned}
    assert sorted(ids.values()) == [0, 1, 2, 3]
    assert ids[respawned] == victim_wid

    # The master's scrape: exact counts, no request in progress (the killed worker's is gone).
    prom = server.scrape("prometheus")
    assert sample_value(prom, "app_http_requests_total", method="GET", route="/",
                        code="200") == summary["complete"]
    assert sample_value(prom, "app_http_request_duration_seconds_count",
                        route="/") == summary["complete"]
    assert sample_value(prom, "app_http_requests_total", route="/block") == 4
    assert sample_value(prom, "app_http_requests_in_progress") == 0
    # Every live worker has its series, the respawned one under the killed one's id; workers
    # run one thread each: none serves the exposer.
    for pid, wid in ids.items():
        assert sample_value(prom, "app_worker_pid", worker_id=str(wid)) == pid
        assert sample_value(prom, "process_threads", worker_id=str(wid)) == 1
    assert sample_value(prom, "process_threads", worker_id="master") >= 2

    # promtool: 0 is clean, 3 means only the linter has remarks; 1 is a parse error.
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=prom, capture_output=True,
                          text=True, timeout=60)
    assert lint.returncode in (0, 3), lint.stdout + lint.stderr + prom
    assert "error while linting" not in lint.stdout + lint.stderr

    om = server.scrape("openmetrics")
    assert om.endswith("# EOF\n")
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    families = {f.name: f for f in text_string_to_metric_families(om)}
    assert families["app_http_requests"].type == "counter"
    assert families["app_http_request_duration_seconds"].type == "histogram"
    assert families["app_http_request_duration_seconds"].unit == "seconds"
    assert families["app_http_requests_in_progress"].type == "gauge"
    totals = [s.value for s in families["app_http_requests"].samples
              if s.name == "app_http_requests_total" and s.labels["route"] == "/"]
    assert totals == [REQUESTS]

    # A real Prometheus scrapes the master's exposer.
    if os.access(PROMETHEUS, os.X_OK):
        _, result = run_prometheus(tmp_path, f"127.0.0.1:{server.metrics_port}",
                                   'app_http_requests_total{route="/"}', str(REQUESTS))
        labels = result["data"]["result"][0]["metric"]
        assert (labels["method"], labels["code"]) == ("GET", "200")

    # A clean shutdown: every worker exits, none crashes; the heap and port file are gone.
    assert server.stop() == 0
    log = server.log_text()
    assert log.count("Worker exiting") == 4, log  # the killed one never got to say it
    assert re.findall(r"terminated due to signal (\d+)", log) == ["9"], log
    assert "Traceback" not in log and "Exception" not in log, log
    assert not server.port_file.exists()
    with pytest.raises(shmetrics.NotFoundError):
        shmetrics.Heap.open(server.heap)
    remove_heap(server.heap)
