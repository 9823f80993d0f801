"""A Flask app whose metrics live in the shared heap of its gunicorn server (native API).

The config beside it (gunicorn.conf.py) creates the heap in the master, names it in
SHMETRICS_HEAP and serves it on http://127.0.0.1:9464/metrics. From this directory, with the
shmetrics package importable (PYTHONPATH=<build>/python, or installed):

    /usr/bin/python3 -m gunicorn -c gunicorn.conf.py gunicorn_app:app
    curl -s localhost:8000/ ; curl -s localhost:8000/items/42 ; curl -s localhost:9464/metrics

Routes: / (hello), /items/<id> (a route with a parameter: its label is the rule, not the URL),
/slow?ms=N (sleeps), /fail (a 500), /whoami (this worker's pid and worker id), and, only when
APP_BLOCK_DIR is set, /block: it writes "pid worker_id" to $APP_BLOCK_DIR/blocked.<pid>, waits
until that file is removed (at most ?s= seconds): a request that holds its worker, for tests
that kill a busy worker.
"""

import os
import time

import flask

import shmetrics

heap = shmetrics.Heap.open(os.environ["SHMETRICS_HEAP"])
registry = shmetrics.Registry(heap, prefix="app")

REQUESTS = registry.counter("http_requests", "HTTP requests served",
                            ["method", "route", "code"])
LATENCY = registry.histogram("http_request_duration", "Time to produce a response",
                             ["route"], unit="seconds",
                             buckets=[.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5])
# livesum: the requests of a worker that dies mid-request stop counting when it is gone.
IN_PROGRESS = registry.gauge("http_requests_in_progress", "Requests being served",
                             mode="livesum")
# One series per live worker (worker_id label): its pid, from its first request on.
WORKER_PID = registry.gauge("worker_pid", "Process id of each live worker", mode="liveall")

app = flask.Flask(__name__)
BLOCK_DIR = os.environ.get("APP_BLOCK_DIR")


_noted_pid = None


def worker_id():
    """This worker's id in the heap, which the server's post_fork hook claimed."""
    return heap.worker_id


def _note_pid():
    global _noted_pid
    if _noted_pid != os.getpid():  # first request of this worker
        WORKER_PID.set(os.getpid())
        _noted_pid = os.getpid()


@app.before_request
def _start():
    flask.g.start = time.perf_counter()
    IN_PROGRESS.inc()
    _note_pid()


@app.after_request
def _count(response):
    # Counted before the response is sent: once a client has it, a scrape shows it.
    route = flask.request.url_rule.rule if flask.request.url_rule else "<unmatched>"
    REQUESTS.labels(flask.request.method, route, str(response.status_code)).inc()
    LATENCY.labels(route).observe(time.perf_counter() - flask.g.start)
    return response


@app.teardown_request
def _done(exc):
    if "start" in flask.g:
        IN_PROGRESS.dec()


@app.route("/")
def hello():
    return "hello\n"


@app.route("/items/<int:item>")
def item(item):
    return flask.jsonify(item=item)


@app.route("/slow")
def slow():
    time.sleep(min(int(flask.request.args.get("ms", "10")), 5000) / 1000)
    return "slow\n"


@app.route("/fail")
def fail():
    flask.abort(500)


@app.route("/whoami")
def whoami():
    return flask.jsonify(pid=os.getpid(), worker_id=worker_id())


@app.route("/block")
def block():
    if not BLOCK_DIR:
        flask.abort(404)
    path = os.path.join(BLOCK_DIR, f"blocked.{os.getpid()}")
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()} {worker_id()}\n")
    os.replace(tmp, path)
    deadline = time.monotonic() + min(float(flask.request.args.get("s", "60")), 600)
    while time.monotonic() < deadline and os.path.exists(path):
        time.sleep(0.05)
    return "unblocked\n"
