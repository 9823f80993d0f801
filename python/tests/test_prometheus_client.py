"""shmetrics.prometheus_client in one process: the API, behaviour and errors compared with the
real prometheus_client, outputs read back with prometheus_client's parsers."""

import gzip
import pickle
import urllib.request

import prometheus_client as real
import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as prom_parse

import shmetrics
import shmetrics.prometheus_client as pc
from shmetrics.prometheus_client import multiprocess
from conftest_dropin import heap, samples_of, unique_name  # noqa: F401 (fixture)


def expose(registry=None, openmetrics=False):
    registry = registry or pc.REGISTRY
    return (pc.generate_latest_openmetrics if openmetrics else pc.generate_latest)(registry)


def whole_heap_registry():
    registry = pc.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def error_of(f):
    with pytest.raises(Exception) as info:
        f()
    return type(info.value), str(info.value)


# ---- the same errors as prometheus_client -------------------------------------------------------

CONSTRUCTOR_ERRORS = [
    ("Counter", dict(name="a b", documentation="d")),
    ("Counter", dict(name="0a", documentation="d")),
    ("Counter", dict(name="a", documentation="d", labelnames=["a-b"])),
    ("Counter", dict(name="a", documentation="d", labelnames=["__x"])),
    ("Counter", dict(name="a", documentation="d", namespace="n s")),
    ("Histogram", dict(name="a", documentation="d", labelnames=["le"])),
    ("Histogram", dict(name="a", documentation="d", buckets=[2, 1])),
    ("Histogram", dict(name="a", documentation="d", buckets=[])),
    ("Summary", dict(name="a", documentation="d", labelnames=["quantile"])),
    ("Gauge", dict(name="a", documentation="d", multiprocess_mode="median")),
    ("Info", dict(name="a", documentation="d", unit="seconds")),
    ("Enum", dict(name="a", documentation="d", unit="seconds", states=["x"])),
    ("Enum", dict(name="a", documentation="d", labelnames=["a"], states=["x"])),
    ("Enum", dict(name="a", documentation="d", states=[])),
    ("Enum", dict(name="a", documentation="d")),
]


@pytest.mark.parametrize("cls,kwargs", CONSTRUCTOR_ERRORS)
def test_constructor_errors_are_prometheus_clients(heap, cls, kwargs):
    expected = error_of(lambda: getattr(real, cls)(registry=None, **kwargs))
    assert expected[0] is ValueError
    assert error_of(lambda: getattr(pc, cls)(registry=None, **kwargs)) == expected


def test_update_errors_are_prometheus_clients(heap):
    for cls, update in [("Counter", lambda m: m.inc()), ("Gauge", lambda m: m.set(1)),
                        ("Gauge", lambda m: m.track_inprogress()),
                        ("Counter", lambda m: m.count_exceptions()),
                        ("Histogram", lambda m: m.observe(1)),
                        ("Summary", lambda m: m.observe(1))]:
        name = unique_name("m").replace("-", "_")
        ours = getattr(pc, cls)(name, "d", ["l"], registry=None)
        theirs = getattr(real, cls)(name, "d", ["l"], registry=None)
        assert error_of(lambda: update(ours)) == error_of(lambda: update(theirs))
    ours = pc.Enum("e_missing", "d", ["l"], states=["a"], registry=None)
    theirs = real.Enum("e_missing", "d", ["l"], states=["a"], registry=None)
    assert error_of(lambda: ours.state("a")) == error_of(lambda: theirs.state("a"))
    ours = pc.Info("i_missing", "d", ["l"], registry=None)
    assert error_of(lambda: ours.info({"k": "v"})) == (
        ValueError, "info metric is missing label values")
    theirs = real.Info("i_missing", "d", ["l"], registry=None)
    assert error_of(lambda: ours.labels("x").info({"l": "v"})) == error_of(
        lambda: theirs.labels("x").info({"l": "v"}))


def test_negative_increment_and_label_errors(heap):
    ours = pc.Counter("neg", "d", registry=None)
    theirs = real.Counter("neg", "d", registry=None)
    assert error_of(lambda: ours.inc(-1)) == error_of(lambda: theirs.inc(-1))
    labelled_ours = pc.Counter("lab", "d", ["a", "b"], registry=None)
    labelled_theirs = real.Counter("lab", "d", ["a", "b"], registry=None)
    for call in [lambda m: m.labels("x"), lambda m: m.labels(a="x"),
                 lambda m: m.labels("x", b="y"), lambda m: m.labels(a="x", c="y")]:
        t, message = error_of(lambda: call(labelled_ours))
        theirs_t, theirs_message = error_of(lambda: call(labelled_theirs))
        assert t is theirs_t is ValueError
        assert message == theirs_message
    assert error_of(lambda: labelled_ours.remove("x")) == error_of(
        lambda: labelled_theirs.remove("x"))
    assert error_of(lambda: labelled_ours.remove("x", "y"))[0] is KeyError
    assert error_of(lambda: labelled_theirs.remove("x", "y"))[0] is KeyError
    t, message = error_of(lambda: ours.labels("x"))
    assert t is ValueError and message.startswith("No label names were set when constructing")
    assert error_of(lambda: ours.remove("x")) == error_of(lambda: theirs.remove("x"))


def test_duplicates_in_a_registry_and_conflicts_in_the_heap(heap):
    registry = pc.CollectorRegistry()
    pc.Counter("dup", "d", registry=registry)
    theirs = real.CollectorRegistry()
    real.Counter("dup", "d", registry=theirs)
    assert error_of(lambda: pc.Counter("dup", "d", registry=registry)) == error_of(
        lambda: real.Counter("dup", "d", registry=theirs))
    # Elsewhere (registry=None, another registry, another process) the same definition is the
    # same series; another definition under that name is refused by the heap.
    a = pc.Counter("dup", "d", registry=None)
    b = pc.Counter("dup_total", "d", registry=pc.CollectorRegistry())
    a.inc()
    b.inc(2)
    assert a.value() == 3
    assert error_of(lambda: pc.Gauge("dup", "d", registry=None))[0] is ValueError
    assert error_of(lambda: pc.Counter("dup", "d", ["x"], registry=None))[0] is ValueError


# ---- names --------------------------------------------------------------------------------------


def test_full_names_follow_prometheus_client(heap):
    cases = [
        ("Counter", dict(name="requests_total", documentation="d", namespace="ns",
                         subsystem="sub")),
        ("Counter", dict(name="bytes", documentation="d", unit="bytes")),
        ("Counter", dict(name="read_total", documentation="d", unit="bytes")),
        ("Gauge", dict(name="temp", documentation="d", unit="celsius")),
        ("Histogram", dict(name="latency", documentation="d", namespace="app", unit="seconds")),
        ("Summary", dict(name="size", documentation="d", subsystem="io")),
        ("Info", dict(name="build", documentation="d", namespace="app")),
        ("Enum", dict(name="phase", documentation="d", states=["a", "b"])),
    ]
    for cls, kwargs in cases:
        ours = getattr(pc, cls)(registry=None, **kwargs)
        theirs = getattr(real, cls)(registry=None, **kwargs)
        assert ours._name == theirs._name
        assert str(ours) == str(theirs)
        assert ours._type == theirs._type
        assert ours._documentation == theirs._documentation
    # The exposition names match too (the heap's family names are prometheus_client's).
    ours = pc.Counter("x_total", "d", ["a"], registry=pc.CollectorRegistry())
    theirs_registry = real.CollectorRegistry()
    theirs = real.Counter("x_total", "d", ["a"], registry=theirs_registry)
    ours.labels("1").inc()
    theirs.labels("1").inc()
    ours_families = [(f.name, f.type, [(s.name, s.labels, s.value) for s in f.samples])
                     for f in prom_parse(expose(ours_registry_of(ours)).decode())]
    theirs_families = [(f.name, f.type, [(s.name, s.labels, s.value) for s in f.samples])
                       for f in prom_parse(real.generate_latest(theirs_registry).decode())
                       if f.name == "x"]
    assert ours_families == theirs_families


def ours_registry_of(metric):
    registry = pc.CollectorRegistry()
    registry.register(metric)
    return registry


# ---- every class and method ---------------------------------------------------------------------


def test_counter(heap):
    registry = pc.CollectorRegistry()
    c = pc.Counter("c_total", "Counts", ["code"], registry=registry)
    c.labels(200).inc()
    c.labels(code="200").inc(2.5)
    c.labels("500").inc(exemplar={"trace_id": "abc"})
    plain = pc.Counter("plain", "Plain", registry=registry)
    plain.inc()
    with pytest.raises(ZeroDivisionError):
        with plain.count_exceptions(ZeroDivisionError):
            1 / 0
    with pytest.raises(KeyError):
        with plain.count_exceptions((ZeroDivisionError, ValueError)):
            raise KeyError("not counted")

    @plain.count_exceptions()
    def fails():
        raise RuntimeError

    with pytest.raises(RuntimeError):
        fails()
    assert fails.__name__ == "fails"
    assert plain.value() == 3
    assert c.labels("200")._labelvalues == ("200",)
    assert c._labelnames == ("code",)
    assert registry.get_sample_value("c_total", {"code": "200"}) == 3.5
    assert registry.get_sample_value("plain_total") == 3
    assert registry.get_sample_value("plain_created") > 0
    om = {f.name: f for f in om_parse(expose(registry, openmetrics=True).decode())}
    [s500] = [s for s in om["c"].samples if s.name == "c_total" and s.labels["code"] == "500"]
    assert s500.exemplar.labels == {"trace_id": "abc"} and s500.exemplar.value == 1
    assert {s.name for s in om["c"].samples} == {"c_total", "c_created"}
    c.remove("200")
    assert registry.get_sample_value("c_total", {"code": "200"}) is None
    c.clear()
    assert registry.get_sample_value("c_total", {"code": "500"}) is None


@pytest.mark.parametrize("mode,expected", [
    ("all", {"0": 7.0}), ("liveall", {"0": 7.0}), ("sum", 7.0), ("livesum", 7.0),
    ("min", 7.0), ("livemin", 7.0), ("max", 7.0), ("livemax", 7.0), ("mostrecent", 7.0),
    ("livemostrecent", 7.0), ("shared", 7.0)])
def test_gauge_modes(heap, mode, expected):
    registry = pc.CollectorRegistry()
    g = pc.Gauge("g_" + mode, "G", multiprocess_mode=mode, registry=registry)
    g.set(5)
    g.inc(3)
    g.dec()
    got = samples_of(expose(registry), "g_" + mode)
    if isinstance(expected, dict):
        worker = str(heap.worker_id)
        assert got == {("g_" + mode, (("worker_id", worker),)): 7.0}
    else:
        assert got == {("g_" + mode, ()): expected}


def test_gauge_methods(heap):
    registry = pc.CollectorRegistry()
    g = pc.Gauge("inprogress", "G", ["path"], multiprocess_mode="livesum", registry=registry)
    child = g.labels("/")
    with child.track_inprogress():
        assert child.value() == 1
    assert child.value() == 0

    @child.track_inprogress()
    def work():
        return child.value()

    assert work() == 1 and child.value() == 0
    t = pc.Gauge("last_run", "G", registry=registry)
    t.set_to_current_time()
    assert t.value() > 1e9
    with t.time():
        pass
    assert 0 <= t.value() < 60
    with pytest.raises(NotImplementedError):
        t.set_function(lambda: 1)


def test_histogram(heap):
    registry = pc.CollectorRegistry()
    h = pc.Histogram("latency", "H", ["op"], buckets=[0.1, 1, 5], unit="seconds",
                     registry=registry)
    child = h.labels("get")
    for v in (0.05, 0.5, 0.5, 3, 100):
        child.observe(v)
    child.observe(0.7, exemplar={"trace_id": "t1"})
    with h.time() as timer:
        timer.labels("put")

    @h.labels("del").time()
    def timed():
        return 42

    assert timed() == 42
    got = samples_of(expose(registry), "latency_seconds")
    bucket = lambda le: got[("latency_seconds_bucket", (("le", le), ("op", "get")))]
    assert [bucket("0.1"), bucket("1.0"), bucket("5.0"), bucket("+Inf")] == [1, 4, 5, 6]
    assert got[("latency_seconds_count", (("op", "get"),))] == 6
    assert got[("latency_seconds_sum", (("op", "get"),))] == pytest.approx(104.75)
    assert got[("latency_seconds_count", (("op", "put"),))] == 1
    assert got[("latency_seconds_count", (("op", "del"),))] == 1
    om = {f.name: f for f in om_parse(expose(registry, openmetrics=True).decode())}
    [b] = [s for s in om["latency_seconds"].samples
           if s.name.endswith("_bucket") and s.labels == {"op": "get", "le": "1.0"}]
    assert b.exemplar.labels == {"trace_id": "t1"} and b.exemplar.value == 0.7
    assert om["latency_seconds"].unit == "seconds"
    default = pc.Histogram("default_buckets", "H", registry=None)
    assert default._upper_bounds == list(real.Histogram.DEFAULT_BUCKETS)


def test_summary(heap):
    registry = pc.CollectorRegistry()
    s = pc.Summary("size_bytes", "S", registry=registry)
    s.observe(10)
    s.observe(5)
    with s.time():
        pass
    got = samples_of(expose(registry), "size_bytes")
    assert got[("size_bytes_count", ())] == 3
    assert 15 <= got[("size_bytes_sum", ())] < 16
    assert registry.get_sample_value("size_bytes_created") > 0


def test_info(heap):
    registry = pc.CollectorRegistry()
    i = pc.Info("build", "Build", registry=registry)
    assert samples_of(expose(registry), "build_info") == {}
    i.info({"version": "1.0", "commit": "abc"})
    i.info({"version": "1.1", "commit": "def"})  # replaces
    assert samples_of(expose(registry), "build_info") == {
        ("build_info", (("commit", "def"), ("version", "1.1"))): 1.0}
    with pytest.raises(ValueError, match="same keys"):
        i.info({"version": "2"})
    # The same output as prometheus_client's, read back by its parsers.
    theirs_registry = real.CollectorRegistry()
    real.Info("build", "Build", registry=theirs_registry).info({"version": "1.1",
                                                                  "commit": "def"})
    assert samples_of(real.generate_latest(theirs_registry), "build_info") == samples_of(
        expose(registry), "build_info")
    assert samples_of(real.openmetrics.exposition.generate_latest(theirs_registry), "build",
                      openmetrics=True) == samples_of(expose(registry, openmetrics=True),
                                                      "build", openmetrics=True)
    labelled = pc.Info("target", "T", ["env"], registry=registry)
    labelled.labels("prod").info({"region": "eu"})
    labelled.labels(env="dev").info({"region": "us"})
    labelled.labels("prod").info({"region": "asia"})
    assert samples_of(expose(registry), "target_info") == {
        ("target_info", (("env", "dev"), ("region", "us"))): 1.0,
        ("target_info", (("env", "prod"), ("region", "asia"))): 1.0}
    with pytest.raises(ValueError, match="Overlapping labels"):
        labelled.labels("x").info({"env": "y"})
    labelled.remove("dev")
    with pytest.raises(KeyError):
        labelled.remove("dev")
    assert list(samples_of(expose(registry), "target_info")) == [
        ("target_info", (("env", "prod"), ("region", "asia")))]
    labelled.clear()
    assert samples_of(expose(registry), "target_info") == {}
    child = pickle.loads(pickle.dumps(labelled.labels("qa")))
    child.info({"region": "mars"})
    assert samples_of(expose(registry), "target_info") == {
        ("target_info", (("env", "qa"), ("region", "mars"))): 1.0}


def test_enum(heap):
    registry = pc.CollectorRegistry()
    e = pc.Enum("phase", "P", states=["starting", "running", "stopped"], registry=registry)
    assert samples_of(expose(registry), "phase") == {
        ("phase", (("phase", "starting"),)): 1, ("phase", (("phase", "running"),)): 0,
        ("phase", (("phase", "stopped"),)): 0}
    e.state("running")
    theirs_registry = real.CollectorRegistry()
    real.Enum("phase", "P", states=["starting", "running", "stopped"],
              registry=theirs_registry).state("running")
    assert samples_of(expose(registry), "phase") == samples_of(
        real.generate_latest(theirs_registry), "phase")
    with pytest.raises(ValueError):
        e.state("flying")
    per_task = pc.Enum("task", "T", ["id"], states=["queued", "done"], registry=registry)
    per_task.labels("1").state("done")
    per_task.labels("2")
    per_task.labels("1")  # an existing series keeps its state
    got = samples_of(expose(registry), "task")
    assert got[("task", (("id", "1"), ("task", "done")))] == 1
    assert got[("task", (("id", "2"), ("task", "queued")))] == 1


# ---- registries and collectors ------------------------------------------------------------------


def test_registry_shows_its_metrics_and_the_multiprocess_collector_the_heap(heap):
    mine = pc.CollectorRegistry()
    pc.Counter("mine", "d", registry=mine).inc()
    pc.Counter("other", "d", registry=pc.CollectorRegistry()).inc()
    names = {f.name for f in prom_parse(expose(mine).decode())}
    assert names == {"mine"}
    whole = {f.name for f in prom_parse(expose(whole_heap_registry()).decode())}
    assert {"mine", "other", "shmetrics_heap_used_bytes", "process_cpu_seconds"} <= whole
    mine.unregister(next(iter(mine._collector_to_names)))
    assert expose(mine) == b""


def test_custom_collectors_and_target_info(heap):
    class Custom:
        def collect(self):
            yield GaugeMetricFamily("custom_value", "Custom", value=42)

    registry = pc.CollectorRegistry(target_info={"service": "shop"})
    registry.register(Custom())
    pc.Gauge("beside", "d", multiprocess_mode="sum", registry=registry).set(2)
    for openmetrics, parse, info in ((False, prom_parse, "target_info"),
                                     (True, om_parse, "target")):
        text = expose(registry, openmetrics).decode()
        families = {f.name: f for f in parse(text)}
        assert families["custom_value"].samples[0].value == 42
        assert families["beside"].samples[0].value == 2
        assert families[info].samples[0].labels == {"service": "shop"}
    assert registry.get_sample_value("custom_value") == 42
    restricted = registry.restricted_registry(["beside"])
    assert [f.name for f in prom_parse(pc.generate_latest(restricted).decode())] == ["beside"]


def test_heap_collector_in_a_real_prometheus_client_registry(heap):
    c = pc.Counter("served", "Served", ["code"], registry=None)
    c.labels("200").inc(3, exemplar={"trace_id": "x"})
    pc.Histogram("took_seconds", "Took", buckets=[1], registry=None).observe(0.5)
    real_registry = real.CollectorRegistry()
    multiprocess.MultiProcessCollector(real_registry)
    text = real.generate_latest(real_registry).decode()
    assert samples_of(text, "served") == {("served_total", (("code", "200"),)): 3.0}
    [created] = samples_of(text, "served_created").values()
    assert created == c.labels("200").collect()[0].samples[1].value > 0
    assert real_registry.get_sample_value("took_seconds_count") == 1
    om = real.openmetrics.exposition.generate_latest(real_registry).decode()
    [served] = [f for f in om_parse(om) if f.name == "served"]
    assert served.samples[0].exemplar.labels == {"trace_id": "x"}
    # The default REGISTRY of prometheus_client too (describe() yields nothing: no clash).
    collector = pc.HeapCollector()
    real.REGISTRY.register(collector)
    try:
        assert real.REGISTRY.get_sample_value("served_total", {"code": "200"}) == 3
    finally:
        real.REGISTRY.unregister(collector)
    # And our generate_latest renders a real registry as prometheus_client does.
    assert samples_of(pc.generate_latest(real_registry), "served") == samples_of(text, "served")


def test_default_registry_and_generate_latest_default(heap):
    name = unique_name("dflt").replace("-", "_")
    c = pc.Counter(name, "d")
    try:
        c.inc(5)
        assert samples_of(pc.generate_latest(), name) == {(name + "_total", ()): 5.0}
        assert pc.REGISTRY.get_sample_value(name + "_total") == 5
    finally:
        pc.REGISTRY.unregister(c)


# ---- HTTP ---------------------------------------------------------------------------------------


def test_make_wsgi_app(heap):
    registry = pc.CollectorRegistry()
    pc.Counter("hits", "Hits", registry=registry).inc(7)
    app = pc.make_wsgi_app(registry)

    def call(**environ):
        got = {}

        def start_response(status, headers):
            got["status"], got["headers"] = status, dict(headers)

        body = b"".join(app(dict(PATH_INFO="/metrics", **environ), start_response))
        return got["status"], got["headers"], body

    status, headers, body = call()
    assert status == "200 OK" and headers["Content-Type"] == pc.CONTENT_TYPE_LATEST
    assert samples_of(body, "hits") == {("hits_total", ()): 7.0}
    status, headers, body = call(HTTP_ACCEPT="application/openmetrics-text; version=1.0.0",
                                 HTTP_ACCEPT_ENCODING="gzip")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert headers["Content-Encoding"] == "gzip"
    assert samples_of(gzip.decompress(body), "hits", openmetrics=True)[("hits_total", ())] == 7
    status, headers, body = call(QUERY_STRING="name[]=nothing")
    assert body == b""


def test_http_servers(heap):
    pc.Counter("scraped", "d", registry=None).inc(2)
    exposer = pc.start_http_server(0, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{exposer.port}/metrics", timeout=30) as r:
            assert samples_of(r.read(), "scraped") == {("scraped_total", ()): 2.0}
    finally:
        exposer.close()
    server = pc.start_wsgi_server(0, addr="127.0.0.1", registry=whole_heap_registry())
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as r:
            assert samples_of(r.read(), "scraped") == {("scraped_total", ()): 2.0}
    finally:
        server.shutdown()
        server.server_close()


def test_write_to_textfile(heap, tmp_path):
    registry = pc.CollectorRegistry()
    pc.Gauge("files", "d", multiprocess_mode="max", registry=registry).set(3)
    path = tmp_path / "metrics.prom"
    pc.write_to_textfile(str(path), registry)
    assert samples_of(path.read_text(), "files") == {("files", ()): 3.0}


# ---- heap selection, pickling, the hot path -----------------------------------------------------


def test_no_heap_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SHMETRICS_HEAP", raising=False)
    pc._heap._reset()
    try:
        with pytest.raises(RuntimeError, match="SHMETRICS_HEAP"):
            pc.Counter("nowhere", "d", registry=None)
        with pytest.raises(RuntimeError, match="set_heap"):
            multiprocess.MultiProcessCollector(pc.CollectorRegistry())
    finally:
        pc._heap._reset()


def test_set_heap_by_name_and_path(monkeypatch, tmp_path):
    monkeypatch.delenv("SHMETRICS_HEAP", raising=False)
    for target in (unique_name("set"), str(tmp_path / "heap")):
        pc._heap._reset()
        try:
            heap = pc.set_heap(target)
            assert pc.set_heap(target) is heap and pc.get_heap() is heap
            assert heap.worker_id is not None
            pc.Counter("in_set_heap", "d", registry=None).inc()
            with pytest.raises(RuntimeError, match="before the first metric"):
                pc.set_heap(unique_name("other"))
            assert b"in_set_heap_total 1" in shmetrics.expose(heap, "prometheus")
        finally:
            pc._heap._reset()
            if target.startswith("/"):
                shmetrics.Heap.remove_at_path(target)
            else:
                shmetrics.Heap.remove(target)


def test_metrics_pickle(heap):
    c = pc.Counter("pickled", "d", ["a"], registry=None)
    g = pc.Gauge("pickled_g", "d", multiprocess_mode="max", registry=None)
    h = pc.Histogram("pickled_h", "d", buckets=[1, 3], registry=None)
    e = pc.Enum("pickled_e", "d", states=["x", "y"], registry=None)
    for m in (c, c.labels("1"), g, h, e):
        back = pickle.loads(pickle.dumps(m))
        assert type(back) is type(m) and back._name == m._name
    pickle.loads(pickle.dumps(c.labels("1"))).inc(4)
    assert c.labels("1").value() == 4
    assert pickle.loads(pickle.dumps(h))._upper_bounds == [1, 3, float("inf")]
    pickle.loads(pickle.dumps(e)).state("y")
    assert e.is_set("y")


def test_classes_derive_from_the_native_ones(heap):
    assert issubclass(pc.Counter, shmetrics.Counter)
    assert issubclass(pc.Gauge, shmetrics.Gauge)
    assert issubclass(pc.Histogram, shmetrics.Histogram)
    assert issubclass(pc.Summary, shmetrics.Summary)
    assert issubclass(pc.Info, shmetrics.Info)
    assert issubclass(pc.Enum, shmetrics.StateSet)
    c = pc.Counter("hot", "d", ["a"], registry=None)
    # The hot methods are the native ones, not Python functions.
    assert pc.Counter.inc is shmetrics._shmetrics.CounterBase.inc
    assert pc.Counter.labels is shmetrics._shmetrics.CounterBase.labels
    assert pc.Histogram.observe is shmetrics._shmetrics.HistogramBase.observe
    assert pc.Gauge.set is shmetrics._shmetrics.GaugeBase.set
    child = c.labels("x")
    assert type(child) is pc.Counter and not hasattr(child, "__dict__")


def test_child_limit_comes_from_the_environment(monkeypatch):
    name = unique_name()
    monkeypatch.setenv("SHMETRICS_HEAP", name)
    monkeypatch.setenv("SHMETRICS_MAX_CHILDREN", "3")
    pc._heap._reset()
    try:
        users = pc.Counter("limited_users", "Users", ["id"], registry=None)
        for i in range(5):
            users.labels(str(i)).inc()
        values = samples_of(pc.generate_latest(whole_heap_registry()), "limited_users")
        assert values[("limited_users_total", (("id", "__overflow__"),))] == 2
        assert len(values) == 4
        pc._heap._reset()
        monkeypatch.setenv("SHMETRICS_MAX_CHILDREN", "lots")
        with pytest.raises(ValueError, match="SHMETRICS_MAX_CHILDREN"):
            pc.Counter("other_family", "Other", ["id"], registry=None)
    finally:
        pc._heap._reset()
        shmetrics.Heap.remove(name)
