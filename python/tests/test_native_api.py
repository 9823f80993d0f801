"""The native API: every family type and method, labels, errors, exposition."""

import gc
import math
import weakref
import os

import pytest

import shmetrics
from util import families, fork_call, sample_value, wait_pid


# ---- counters ---------------------------------------------------------------------------------

def test_counter_without_labels_is_its_own_child(heap, registry):
    jobs = registry.counter("jobs", "Jobs run")
    jobs.inc()
    jobs.inc(2)
    jobs.inc(0.5)
    jobs.inc(amount=1)
    assert jobs.value() == 4.5
    assert sample_value(heap, "jobs_total") == 4.5
    assert sample_value(heap, "jobs_created") is not None


def test_counter_name_total_suffix_is_dropped_and_exposed_again(heap, registry):
    c = registry.counter("requests_total", "Requests")
    c.inc()
    assert c.name == "requests"
    assert sample_value(heap, "requests_total") == 1


def test_counter_refuses_negative_nan_and_infinite_amounts(registry):
    c = registry.counter("c", "C")
    for bad in (-1, -0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="non-negative"):
            c.inc(bad)
    with pytest.raises(TypeError):
        c.inc("1")
    assert c.value() == 0


def test_counter_large_integers_stay_exact(registry):
    c = registry.counter("big", "Big")
    c.inc(2**62)
    c.inc(2**62)
    c.inc(1)
    assert c.value() == float(2**63 + 1)
    c.inc(2**70)  # beyond int64: counted as a double
    assert c.value() > 2**70


def test_counter_exemplar_is_exposed(heap, registry):
    c = registry.counter("hits", "Hits", ["route"])
    c.labels("/").inc(1, exemplar={"trace_id": "abc123"})
    (sample,) = [s for s in families(heap)["hits"].samples if s.name == "hits_total"]
    assert sample.value == 1
    assert sample.exemplar.labels == {"trace_id": "abc123"}
    assert sample.exemplar.value == 1


def test_exemplar_checks(registry):
    c = registry.counter("hits", "Hits")
    with pytest.raises(ValueError, match="128"):
        c.inc(exemplar={"trace_id": "x" * 130})
    with pytest.raises(ValueError, match="Invalid label"):
        c.inc(exemplar={"0bad": "x"})
    with pytest.raises(TypeError):
        c.inc(exemplar=["trace_id", "x"])
    assert c.value() == 0  # nothing counted for a refused exemplar


def test_count_exceptions_as_context_manager_and_decorator(registry):
    errors = registry.counter("errors", "Errors")
    with pytest.raises(KeyError):
        with errors.count_exceptions(KeyError):
            raise KeyError("x")
    with pytest.raises(ValueError):
        with errors.count_exceptions(KeyError):
            raise ValueError("not counted")

    @errors.count_exceptions()
    def fails():
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        fails()
    with errors.count_exceptions():
        pass
    assert errors.value() == 2


# ---- gauges -----------------------------------------------------------------------------------

def test_gauge_methods(heap, registry):
    g = registry.gauge("temperature", "Temperature", unit="celsius")
    g.set(21.5)
    g.inc()
    g.inc(0.5)
    g.dec(2)
    g.dec(amount=1)
    assert g.value() == 20.0
    assert g.name == "temperature_celsius"
    assert sample_value(heap, "temperature_celsius") == 20.0
    g.set_to_current_time()
    assert g.value() > 1.6e9  # a Unix time in seconds


def test_gauge_track_inprogress_and_time(registry):
    g = registry.gauge("in_flight", "In flight")
    with g.track_inprogress():
        assert g.value() == 1
        with g.track_inprogress():
            assert g.value() == 2
    assert g.value() == 0

    @g.track_inprogress()
    def work():
        return g.value()

    assert work() == 1
    assert g.value() == 0
    d = registry.gauge("last_duration", "Seconds")
    d.set(-1)
    with d.time():
        pass
    assert d.value() >= 0


def test_gauge_modes(heap, registry):
    with pytest.raises(ValueError, match="unknown gauge mode"):
        registry.gauge("g", "G", mode="bogus")
    per_worker = registry.gauge("busy", "Busy", mode="all")
    total = registry.gauge("busy_sum", "Busy", mode="sum")
    # Workers that are alive at the same time each have their own id (a dead worker's id goes
    # to the next process that attaches), so they hold until the parent has looked.
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()

    def worker(value):
        os.close(ready_r)
        os.close(hold_w)
        heap.attach_worker()
        per_worker.set(value)
        total.set(value)
        os.write(ready_w, b"x")
        os.read(hold_r, 1)

    pids = [fork_call(worker, v) for v in (3, 5)]
    os.close(ready_w)
    os.close(hold_r)
    assert len(os.read(ready_r, 1) + os.read(ready_r, 1)) == 2
    samples = families(heap)["busy"].samples
    assert sorted(s.value for s in samples) == [3, 5]
    assert sorted(s.labels["worker_id"] for s in samples) == ["0", "1"]
    assert sample_value(heap, "busy_sum") == 8
    os.close(hold_w)
    assert [wait_pid(p) for p in pids] == [0, 0]
    os.close(ready_r)


def test_gauge_ttl_option_is_checked(registry):
    with pytest.raises(ValueError):
        registry.gauge("g", "G", ttl=-1)
    g = registry.gauge("fresh", "Fresh", ttl=60)
    g.set(1)
    assert g.value() == 1


# ---- histograms and summaries -----------------------------------------------------------------

def test_histogram_buckets_count_sum(heap, registry):
    h = registry.histogram("latency", "Latency", ["route"], unit="seconds", buckets=[0.1, 1, 10])
    child = h.labels("/")
    for v in (0.05, 0.5, 5, 50):
        child.observe(v)
    child.observe(float("nan"))  # dropped
    assert child.count() == 4
    assert child.sum() == 55.55
    buckets = {s.labels["le"]: s.value for s in families(heap)["latency_seconds"].samples
               if s.name == "latency_seconds_bucket"}
    assert buckets == {"0.1": 1, "1.0": 2, "10.0": 3, "+Inf": 4}


def test_histogram_default_buckets_exemplar_and_time(heap, registry):
    h = registry.histogram("work", "Work")
    h.observe(0.3, exemplar={"trace_id": "t1"})
    with h.time():
        pass

    @h.time()
    def timed():
        return 42

    assert timed() == 42
    assert h.count() == 3
    bucket = [s for s in families(heap)["work"].samples
              if s.name == "work_bucket" and s.labels["le"] == "0.5"][0]
    assert bucket.exemplar.labels == {"trace_id": "t1"}
    les = [s.labels["le"] for s in families(heap)["work"].samples if s.name == "work_bucket"]
    assert les[0] == "0.005" and les[-1] == "+Inf" and len(les) == 12


def test_histogram_bad_buckets(registry):
    for bad in ([1, 0.5], [float("nan")], [1, 1]):
        with pytest.raises(ValueError):
            registry.histogram("h", "H", buckets=bad)
    with pytest.raises(ValueError):
        registry.histogram("h2", "H", ["le"])


def test_native_histogram_count_sum_exemplar_time_and_processes(heap, registry):
    h = registry.native_histogram("rpc", "RPC", ["method"], unit="seconds", schema=2,
                                  negative_buckets=True, max_buckets=40)
    child = h.labels("Get")
    for v in (0.001, 0.5, -2, 0, 1e9):
        child.observe(v)
    child.observe(float("nan"))  # dropped
    child.observe(0.25, exemplar={"trace_id": "t1"})
    with child.time():
        pass
    assert wait_pid(fork_call(lambda: [child.observe(1) for _ in range(100)])) == 0
    assert child.count() == 107
    assert child.sum() == pytest.approx(0.001 + 0.5 - 2 + 1e9 + 0.25 + 100, rel=1e-12)
    fam = families(heap)["rpc_seconds"]
    assert fam.type == "histogram"
    samples = {s.name: s for s in fam.samples}
    assert samples["rpc_seconds_bucket"].labels["le"] == "+Inf"
    assert samples["rpc_seconds_count"].value == 107
    assert isinstance(h, shmetrics.NativeHistogram)


def test_native_histogram_bad_options(registry):
    for bad in (dict(schema=9), dict(schema=-5), dict(zero_threshold=-1.0),
                dict(min_value=0.0), dict(min_value=2.0, max_value=1.0),
                dict(max_value=float("inf")), dict(schema=8, negative_buckets=True)):
        with pytest.raises(ValueError):
            registry.native_histogram("nh", "NH", **bad)
    with pytest.raises(ValueError):
        registry.native_histogram("nh2", "NH", ["le"])


def test_summary_count_sum_quantiles(heap, registry):
    s = registry.summary("size", "Sizes", unit="bytes")
    s.observe(10)
    s.observe(30)
    assert (s.count(), s.sum()) == (2, 40)
    assert math.isnan(s.quantile(0.5))
    q = registry.summary("rpc", "RPC", quantiles=[0.5, 0.99], max_age=60)
    for v in range(1, 101):
        q.observe(v)
    assert abs(q.quantile(0.5) - 50) <= 1
    assert abs(q.quantile(0.99) - 99) <= 1.5
    quantiles = {x.labels["quantile"]: x.value for x in families(heap)["rpc"].samples
                 if x.name == "rpc"}
    assert set(quantiles) == {"0.5", "0.99"}
    with q.time():
        pass
    assert q.count() == 101
    with pytest.raises(ValueError):
        registry.summary("bad", "B", quantiles=[1.5])


# ---- info and statesets -----------------------------------------------------------------------

def test_info(heap, registry):
    build = registry.info("build", "Build", ["version", "revision"])
    build.labels("1.2.0", "abc")
    (sample,) = families(heap)["build"].samples
    assert sample.name == "build_info"
    assert sample.labels == {"version": "1.2.0", "revision": "abc"}
    assert sample.value == 1


def test_state_set(heap, registry):
    state = registry.state_set("worker_state", "State", states=["idle", "busy", "draining"])
    assert state.states() == ("idle", "busy", "draining")
    state.set_only("busy")
    assert state.is_set("busy") and not state.is_set("idle")
    state.set("draining")
    state.set("busy", False)
    assert [state.is_set(s) for s in state.states()] == [False, False, True]
    with pytest.raises(ValueError, match="not a state"):
        state.set_only("gone")
    values = {s.labels["worker_state"]: s.value for s in families(heap)["worker_state"].samples}
    assert values == {"idle": 0, "busy": 0, "draining": 1}


# ---- Spectator's meters -----------------------------------------------------------------------

def test_timer(heap, registry):
    t = registry.timer("db_query", "Queries", ["table"])
    users = t.labels("users")
    users.record(0.25)
    users.record(0.5)
    with users.time():
        pass
    with pytest.raises(ValueError):
        users.record(-1)
    assert users.count() == 3
    assert users.total_time() >= 0.75
    assert users.max() >= 0.5
    assert users.total_of_squares() >= 0.3125
    names = set(families(heap))
    assert {"db_query_seconds", "db_query_seconds_max",
            "db_query_seconds_sum_of_squares"} <= names
    # A collection resets the max.
    assert users.max() == 0


def test_distribution_summary(registry):
    d = registry.distribution_summary("payload", "Payloads", unit="bytes")
    d.record(100)
    d.record(300)
    with pytest.raises(ValueError):
        d.record(-1)
    assert (d.count(), d.total_amount(), d.max()) == (2, 400, 300)
    assert d.total_of_squares() == 100000


def test_max_gauge(heap, registry):
    m = registry.max_gauge("queue_depth_max", "Deepest")
    assert math.isnan(m.value())
    m.set(3)
    m.set(17)
    m.set(5)
    assert m.value() == 17
    with pytest.raises(ValueError):
        m.set(float("nan"))
    assert sample_value(heap, "queue_depth_max") == 17
    assert math.isnan(m.value())  # the exposition emptied it


def test_age_gauge(heap, registry):
    a = registry.age_gauge("last_refresh", "Since refresh")
    assert a.name == "last_refresh_seconds"
    a.reset()
    assert a.last_reset() > 1.6e9
    assert sample_value(heap, "last_refresh_seconds") >= 0


def test_percentile_timer_and_distribution_summary(heap, registry):
    t = registry.percentile_timer("rpc", "RPC", ["method"], min=0.001, max=10)
    get = t.labels("Get")
    for ms in range(1, 101):
        get.record(ms / 1000)
    assert get.count() == 100
    assert 0.09 <= get.quantile(0.99) <= 0.11
    assert abs(get.total_time() - 5.05) < 1e-9
    with pytest.raises(ValueError):
        get.quantile(99)
    with t.labels("Put").time():
        pass
    p = registry.percentile_distribution_summary("sizes", "Sizes")
    for v in range(1, 1001):
        p.record(v)
    with pytest.raises(ValueError):
        p.record(-1)
    with pytest.raises(TypeError):
        p.record(1.5)
    assert p.count() == 1000 and p.total_amount() == 500500
    assert 900 <= p.quantile(0.95) <= 1000
    assert families(heap)["rpc_seconds"].type == "histogram"


# ---- labels -----------------------------------------------------------------------------------

def test_labels_by_position_and_by_name_are_the_same_child(registry):
    c = registry.counter("http", "HTTP", ["method", "code"])
    c.labels("GET", "200").inc()
    c.labels(code="200", method="GET").inc()
    c.labels("GET", 200).inc()  # values are turned into str
    assert c.labels("GET", "200").value() == 3
    child = c.labels("GET", "200")
    assert child.label_values == ("GET", "200")
    assert child.parent is c
    assert child.label_names == ("method", "code")
    assert c.label_values is None


def test_labels_errors(registry):
    c = registry.counter("http", "HTTP", ["method", "code"])
    with pytest.raises(ValueError, match="missing label values"):
        c.inc()
    with pytest.raises(ValueError, match="Incorrect label count"):
        c.labels("GET")
    with pytest.raises(ValueError, match="Incorrect label names"):
        c.labels(method="GET", status="200")
    with pytest.raises(ValueError, match="both"):
        c.labels("GET", code="200")
    with pytest.raises(ValueError, match="can not chain"):
        c.labels("GET", "200").labels("GET", "200")
    with pytest.raises(ValueError):
        c.labels("GET", "x" * 5000)  # over kMaxLabelValueBytes
    with pytest.raises(ValueError, match="No label names"):
        registry.counter("plain", "Plain").labels("x")
    with pytest.raises(UnicodeEncodeError):
        c.labels("GET", "\ud800")


def test_remove_and_clear(heap, registry):
    c = registry.counter("http", "HTTP", ["code"])
    for code in ("200", "404", "500"):
        c.labels(code).inc()
    assert c.series_count() == 3
    assert c.remove("404") is True
    assert c.remove("404") is False
    assert c.series_count() == 2
    assert c.labels("404").value() == 0  # a fresh series
    c.clear()
    assert c.series_count() == 0
    assert sample_value(heap, "http_total", code="200") is None
    plain = registry.counter("plain", "Plain")
    plain.inc(3)
    plain.clear()
    assert plain.value() == 0


def test_a_child_removed_by_another_process_is_not_reused(heap, registry):
    c = registry.counter("sessions", "Sessions", ["user"])
    alice = c.labels("alice")
    alice.inc()
    assert c.labels("alice") is alice  # from the family's cache

    def elsewhere():
        c.remove("alice")
        c.labels("bob").inc(5)  # may take alice's old record

    assert wait_pid(fork_call(elsewhere)) == 0
    c.labels("alice").inc(7)  # the cache must not send this to bob's series
    assert sample_value(heap, "sessions_total", user="alice") == 7
    assert sample_value(heap, "sessions_total", user="bob") == 5


def test_child_limit_sends_new_children_to_the_overflow_child(heap):
    r = shmetrics.Registry(heap, max_children=2, read_environment=False)
    c = r.counter("users", "Users", ["id"])
    for i in range(5):
        c.labels(str(i)).inc()
    values = {s.labels["id"]: s.value for s in families(heap)["users"].samples
              if s.name == "users_total"}
    assert values == {"0": 1, "1": 1, "__overflow__": 3}
    assert sample_value(heap, "shmetrics_series_overflow_total", family="users") == 3


def test_children_and_families_are_freed(registry):
    c = registry.counter("gc_check", "GC", ["x"])
    for i in range(100):
        c.labels(str(i)).inc()
    before = len(gc.get_objects())
    for i in range(1000):
        c.labels(str(i % 100)).inc()  # cached: nothing the collector tracks is kept
    assert len(gc.get_objects()) - before < 50
    assert not gc.is_tracked(c.labels("1"))  # a cached child refers to nothing tracked
    child = c.labels("1")
    family = weakref.ref(c)
    c.remove("1")  # out of the cache, still held here: it holds its family now
    assert gc.is_tracked(child)
    del c
    assert family() is not None and child.parent.labels("2").value() == 11
    del child
    gc.collect()
    assert family() is None  # nothing holds the family: it and its cache are gone
    orphan_family = registry.counter("gc_orphan", "GC", ["x"])
    orphan = orphan_family.labels("a")
    del orphan_family
    assert orphan.parent is None  # its family went away first
    orphan.inc()
    assert orphan.value() == 1


# ---- registries -------------------------------------------------------------------------------

def test_prefix_const_labels_and_environment(heap, monkeypatch):
    monkeypatch.setenv("SHMETRICS_COMMON_LABELS", "region=eu,app=shop")
    r = shmetrics.Registry(heap, prefix="shop", const_labels={"app": "web"})
    assert r.const_labels == {"app": "web", "region": "eu"}
    assert r.prefix == "shop" and r.heap.name == heap.name
    c = r.counter("orders", "Orders")
    c.inc()
    (sample,) = [s for s in families(heap)["shop_orders"].samples if s.name.endswith("_total")]
    assert sample.labels == {"app": "web", "region": "eu"}
    monkeypatch.setenv("SHMETRICS_COMMON_LABELS", "broken")
    with pytest.raises(ValueError, match="SHMETRICS_COMMON_LABELS"):
        shmetrics.Registry(heap)
    with pytest.raises(ValueError):
        shmetrics.Registry(heap, const_labels={"le": "x"}, read_environment=False)
    with pytest.raises(ValueError):
        shmetrics.Registry(heap, prefix="1bad", read_environment=False)


def test_the_same_definition_is_the_same_family(heap, registry):
    a = registry.counter("jobs", "Jobs", ["kind"])
    b = shmetrics.Registry(heap, read_environment=False).counter("jobs", "Other help", ["kind"])
    a.labels("x").inc()
    b.labels("x").inc()
    assert a.labels("x").value() == 2
    with pytest.raises(shmetrics.AlreadyExistsError):
        registry.gauge("jobs", "Jobs", ["kind"])
    with pytest.raises(shmetrics.AlreadyExistsError):
        registry.counter("jobs", "Jobs", ["other"])
    with pytest.raises(shmetrics.AlreadyExistsError, match="jobs_total"):
        registry.gauge("jobs_total", "Clash")


def test_registration_errors(registry):
    with pytest.raises(ValueError):
        registry.counter("bad name", "x")
    with pytest.raises(ValueError):
        registry.counter("x", "x", ["__reserved"])
    with pytest.raises(ValueError):
        registry.counter("x", "x", ["a", "a"])
    with pytest.raises(TypeError, match="unexpected"):
        registry._add(shmetrics.Counter, "x", "x", (), {"bogus": 1})
    with pytest.raises(TypeError):
        registry.counter("x", "x", "method")  # a str is not a sequence of names
    with pytest.raises(shmetrics.AlreadyExistsError, match="collector itself"):
        registry.gauge("shmetrics_heap_used_bytes", "x")
    with pytest.raises(TypeError):
        registry._register(object(), "x", "x", [])
    used = registry.counter("used", "Used")
    with pytest.raises(ValueError, match="registered already"):
        registry._register(used, "y", "y", [])
    assert isinstance(ValueError("x"), Exception)
    assert issubclass(shmetrics.InvalidArgumentError, ValueError)
    assert issubclass(shmetrics.InvalidArgumentError, shmetrics.Error)


def test_unregistered_metric_objects_refuse_updates():
    c = shmetrics.Counter()
    with pytest.raises(RuntimeError, match="not registered"):
        c.inc()
    with pytest.raises(RuntimeError, match="not registered"):
        c.labels("x")
    assert c.name is None and c.bound is False
    assert "unregistered" in repr(c)


def test_every_type_in_one_exposition_passes_the_parsers(heap, registry):
    registry.counter("c", "C", ["a"]).labels("x").inc()
    registry.gauge("g", "G").set(1)
    registry.histogram("h", "H").observe(1)
    registry.summary("s", "S", quantiles=[0.5]).observe(1)
    registry.info("i", "I", ["v"]).labels("1")
    registry.state_set("st", "ST", states=["a", "b"]).set_only("a")
    registry.timer("t", "T").record(1)
    registry.distribution_summary("d", "D").record(1)
    registry.max_gauge("m", "M").set(1)
    registry.age_gauge("ag", "AG").reset()
    registry.percentile_timer("pt", "PT").record(1)
    registry.percentile_distribution_summary("pd", "PD").record(1)
    registry.native_histogram("nh", "NH").observe(1)
    names = set(families(heap))
    assert {"c", "g", "h", "s", "i", "st", "t_seconds", "d", "m", "ag_seconds", "pt_seconds",
            "pd", "nh"} <= names


def test_expose_formats(heap, registry):
    registry.counter("c", "C").inc()
    om = shmetrics.expose(heap)
    assert om.endswith(b"# EOF\n")
    text = shmetrics.expose(heap, "prometheus")
    assert b"# EOF" not in text and b"c_total 1" in text
    # Delimited MetricFamily messages: the counter's family is named c_total (field 1).
    pb = shmetrics.expose(heap, "protobuf")
    assert b"\n\x07c_total" in pb and b"# TYPE" not in pb
    with pytest.raises(ValueError, match="format"):
        shmetrics.expose(heap, "protobuf-ish")


def test_expose_options_created_and_utf8_names(heap):
    r = shmetrics.Registry(heap, read_environment=False, utf8_names=True)
    assert r.utf8_names
    r.counter("http.requests", "Requests", ["url.path"]).labels("/").inc()
    om = shmetrics.expose(heap)
    assert b'http_requests_total{url_path="/"} 1' in om and b"_created" in om
    assert b"_created" not in shmetrics.expose(heap, created_samples=False)
    utf8 = shmetrics.expose(heap, utf8_names=True)
    assert b'{"http.requests_total","url.path"="/"} 1' in utf8
    with pytest.raises(ValueError):
        shmetrics.Registry(heap, read_environment=False).counter("a.b", "Not legacy")
    # The option travels with a pickled registry.
    import pickle
    assert pickle.loads(pickle.dumps(r)).utf8_names


def test_read_only_heap(heap_name, heap, registry):
    registry.counter("c", "C").inc()
    ro = shmetrics.Heap.open(heap_name, read_only=True)
    assert ro.read_only
    r = shmetrics.Registry(ro, read_environment=False)
    assert r.counter("c", "C").value() == 1  # an existing family can be read
    with pytest.raises(shmetrics.FailedPreconditionError):
        r.counter("new", "New")
    assert b"c_total 1" in shmetrics.expose(ro, "prometheus")
    with pytest.raises(shmetrics.FailedPreconditionError):
        ro.attach_worker()


def test_repr(registry):
    c = registry.counter("http", "HTTP", ["code"])
    assert repr(c) == "<Counter http>"
    assert repr(c.labels("200")) == "<Counter http('200',)>"
    assert c.type == "counter"
    assert isinstance(c.labels("200"), shmetrics.Counter)


def test_many_processes_add_up(heap, registry):
    c = registry.counter("work", "Work", ["kind"], striped=True)
    h = registry.histogram("sizes", "Sizes", buckets=[1, 10])

    def worker():
        heap.attach_worker()
        for i in range(5000):
            c.labels("a").inc()
            c.labels(kind="b").inc(2)
            h.observe(i % 20)

    pids = [fork_call(worker) for _ in range(4)]
    assert [wait_pid(p) for p in pids] == [0] * 4
    assert c.labels("a").value() == 20000
    assert c.labels("b").value() == 40000
    assert h.count() == 20000
    assert sample_value(heap, "sizes_bucket", le="10.0") == 4 * 5000 * 11 / 20
    assert os.getpid() > 0


def test_children_survive_any_order_of_cache_changes(heap):
    # Children held, dropped, removed, cleared and evicted in a random order, with their
    # families dropped too: the asan configuration runs this with PYTHONMALLOC=malloc, so a
    # reference miscounted anywhere is a use after free it reports.
    import random
    rng = random.Random(1234)
    registry = shmetrics.Registry(heap, read_environment=False)
    held = []
    family = registry.counter("churn", "Churn", ["k"])
    expected = {}
    for step in range(3000):
        op = rng.random()
        key = str(rng.randrange(40))
        if op < 0.5:
            child = family.labels(key)
            child.inc()
            expected[key] = expected.get(key, 0) + 1
            if rng.random() < 0.3:
                held.append(child)
        elif op < 0.6:
            if family.remove(key):
                expected.pop(key, None)
        elif op < 0.63:
            family.clear()
            expected.clear()
        elif op < 0.66:
            family = registry.counter("churn", "Churn", ["k"])  # a new object, empty cache
        elif op < 0.75 and held:
            held.pop(rng.randrange(len(held)))
        elif op < 0.77:
            gc.collect()
        else:
            for child in held[-3:]:
                child.value()
                if child.parent is not None:
                    child.parent.series_count()
    for key, n in expected.items():
        assert family.labels(key).value() == n
    del family
    gc.collect()
    for child in held:
        child.inc()  # a child outlives its family object, parent or not
