#!/usr/bin/python3
"""shmetrics' Python package beside prometheus_client's multiprocess mode, in one run.

    /usr/bin/python3 bench/python/bench_python.py --build build/release

measures, in CPU time (time.process_time of the process doing the work; getrusage for the
workers as a whole):

- the hot paths: Counter.inc() on an unlabelled counter, labels("GET", "200").inc() on an
  existing child of a 2-label counter, Histogram.observe() with the default buckets;
- creating 10,000 labelled series in each of 16 forked workers (os.fork), first with the same
  10,000 label sets in every worker (the workers of one service), then with label sets that
  differ per worker (16 x 10,000 distinct series);
- a scrape of those 16 workers x 10,000 series from the master, while the workers are alive and
  after they exited: prometheus_client = MultiProcessCollector + generate_latest (the text
  format, and the OpenMetrics one), shmetrics = shmetrics.expose(heap, 'prometheus') and
  expose(heap, 'openmetrics').

Each side runs the native API (shmetrics.Registry(heap).counter(...)) and, where it exists, the
drop-in shmetrics.prometheus_client (prometheus_client's constructors, on a heap named by
SHMETRICS_HEAP). prometheus_client runs in multiprocess mode, PROMETHEUS_MULTIPROC_DIR a fresh
directory per benchmark; shmetrics a fresh heap per benchmark. Every benchmark runs in a freshly
forked process, so no benchmark sees another's metrics, files or heaps.

The hot paths take the median of --repeats runs of at least --min-time CPU seconds each,
interleaving the implementations so they see the same machine. Ratios (shmetrics divided by
prometheus_client) are checked against issue 14's targets and printed as a Markdown table;
--json writes every number. The script checks the scrapes' contents (series count and sum),
never their timings: --quick is the tiny run ctest uses as a smoke test.
"""

import argparse
import datetime
import gc
import json
import os
import pickle
import platform
import re
import resource
import shutil
import statistics
import struct
import sys
import tempfile
import time
import timeit
import traceback

TARGETS = {  # shmetrics / prometheus_client, at most
    "inc": 1 / 8,
    "labels_inc": 1 / 5,
    "observe": 1 / 8,
    "scrape": 1 / 50,
}
UNROLL = 10  # calls per loop iteration of the hot-path loops, so the loop itself costs little


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default="build/release",
                   help="the CMake build directory; the package is found in <build>/python")
    p.add_argument("--repeats", type=int, default=7, help="runs of each hot path (median)")
    p.add_argument("--min-time", type=float, default=0.2,
                   help="CPU seconds of one hot-path run, at least")
    p.add_argument("--workers", type=int, default=16, help="forked workers creating series")
    p.add_argument("--series", type=int, default=10000, help="label sets per worker")
    p.add_argument("--scrape-repeats", type=int, default=5, help="scrapes of each case (median)")
    p.add_argument("--no-differ", action="store_true",
                   help="skip the case where every worker creates its own label sets")
    p.add_argument("--only", choices=["hot", "create"], help="run only one group")
    p.add_argument("--json", metavar="PATH", help="write every measurement to PATH")
    p.add_argument("--quick", action="store_true",
                   help="a tiny run that only checks the script works (2 workers x 200 series, "
                        "1 repeat); its numbers mean nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.min_time, args.workers, args.series = 1, 0.002, 2, 200
        args.scrape_repeats = 1
    return args


ARGS = parse_args(sys.argv[1:])

# prometheus_client picks its value class (multiprocess or not) when it is first imported, from
# the environment: the variable must be set before. Each benchmark points it at its own directory.
_TMP = tempfile.mkdtemp(prefix="shmetrics-pybench-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _TMP
os.environ.pop("SHMETRICS_HEAP", None)

_pkg = os.path.join(os.path.abspath(ARGS.build), "python")
if not os.path.isfile(os.path.join(_pkg, "shmetrics", "__init__.py")):
    sys.exit(f"no shmetrics package in {_pkg}: build the target shmetrics_python first "
             f"(cmake --build --preset release --target shmetrics_python)")
sys.path.insert(0, _pkg)

import prometheus_client  # noqa: E402
import prometheus_client.multiprocess  # noqa: E402
import prometheus_client.openmetrics.exposition  # noqa: E402
import shmetrics  # noqa: E402

try:
    import shmetrics.prometheus_client as dropin  # noqa: E402
    if not all(hasattr(dropin, n) for n in ("Counter", "Histogram")):
        dropin = None
except ImportError:
    dropin = None

if not getattr(prometheus_client.values.ValueClass, "_multiprocess", False):
    sys.exit("prometheus_client is not in multiprocess mode")


# --- processes -----------------------------------------------------------------------------

def _read_exact(fd, n):
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise EOFError("child closed its pipe early")
        data += chunk
    return data


def _send(fd, obj):
    data = pickle.dumps(obj)
    os.write(fd, struct.pack("<Q", len(data)))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _recv(fd):
    (n,) = struct.unpack("<Q", _read_exact(fd, 8))
    return pickle.loads(_read_exact(fd, n))


def in_child(fn, *args):
    """Runs fn(*args) in a forked process and returns its result (a fresh process per benchmark:
    prometheus_client's per-process files and value lists, and shmetrics' heaps, start empty)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        status = 0
        try:
            _send(w, ("ok", fn(*args)))
        except BaseException:  # report everything, even SystemExit, to the parent
            _send(w, ("error", traceback.format_exc()))
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    try:
        kind, value = _recv(r)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if kind == "error":
        raise RuntimeError("benchmark process failed:\n" + value)
    return value


_heap_counter = [0]


def fresh_heap_name():
    _heap_counter[0] += 1
    return f"shmetrics-pybench-{os.getpid()}-{_heap_counter[0]}-{os.urandom(3).hex()}"


def fresh_dir():
    return tempfile.mkdtemp(dir=_TMP)


# --- the implementations -------------------------------------------------------------------
#
# Each returns an object with counter(name, doc, labelnames), histogram(name, doc) and
# scrape(format) -> bytes, and close(). They are built inside the benchmark's own process.

class PrometheusClientMP:
    name = "prometheus_client"

    def __init__(self, max_children=None):
        self.dir = fresh_dir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.dir
        self.registry = prometheus_client.CollectorRegistry()
        prometheus_client.multiprocess.MultiProcessCollector(self.registry, path=self.dir)

    def counter(self, name, doc, labelnames=()):
        return prometheus_client.Counter(name, doc, labelnames, registry=None)

    def histogram(self, name, doc):
        return prometheus_client.Histogram(name, doc, registry=None)

    def attach_worker(self):
        pass  # the first update after fork opens the worker's own file

    def scrape(self, fmt):
        if fmt == "openmetrics":
            return prometheus_client.openmetrics.exposition.generate_latest(self.registry)
        return prometheus_client.generate_latest(self.registry)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class ShmetricsNative:
    name = "shmetrics"

    def __init__(self, max_children=10000):
        self.heap_name = fresh_heap_name()
        self.heap = shmetrics.Heap.create(self.heap_name)
        self.registry = shmetrics.Registry(self.heap)
        self.max_children = max_children

    def counter(self, name, doc, labelnames=()):
        return self.registry.counter(name, doc, labelnames, max_children=self.max_children)

    def histogram(self, name, doc):
        return self.registry.histogram(name, doc)

    def attach_worker(self):
        self.heap.attach_worker()

    def scrape(self, fmt):
        return shmetrics.expose(self.heap, fmt)

    def close(self):
        shmetrics.Heap.remove(self.heap_name)


class ShmetricsDropin:
    """shmetrics.prometheus_client: prometheus_client's constructors on the heap SHMETRICS_HEAP
    names. The heap is created here first, as a gunicorn master would."""

    name = "shmetrics.prometheus_client"

    def __init__(self, max_children=10000):
        self.heap_name = fresh_heap_name()
        self.heap = shmetrics.Heap.create(self.heap_name)
        os.environ["SHMETRICS_HEAP"] = self.heap_name
        os.environ["SHMETRICS_MAX_CHILDREN"] = str(max_children)

    def counter(self, name, doc, labelnames=()):
        return dropin.Counter(name, doc, labelnames)

    def histogram(self, name, doc):
        return dropin.Histogram(name, doc)

    def attach_worker(self):
        self.heap.attach_worker()

    def scrape(self, fmt):
        return shmetrics.expose(self.heap, fmt)

    def close(self):
        shmetrics.Heap.remove(self.heap_name)


def implementations():
    impls = [PrometheusClientMP, ShmetricsNative]
    if dropin is not None:
        impls.append(ShmetricsDropin)
    return impls


# --- hot paths -----------------------------------------------------------------------------

HOT_PATHS = {
    # key: (label, setup(impl) -> namespace for the statement, statement)
    "inc": ("Counter.inc() (unlabelled)",
            lambda impl: {"m": impl.counter("bench_hot", "Hot counter.")},
            "m.inc()"),
    "labels_inc": ('labels("GET", "200").inc() (existing child)',
                   lambda impl: {"m": _with_child(impl.counter("bench_hot_labelled",
                                                               "Hot labelled counter.",
                                                               ["method", "code"]))},
                   'm.labels("GET", "200").inc()'),
    "observe": ("Histogram.observe() (default buckets)",
                lambda impl: {"m": impl.histogram("bench_hot_seconds", "Hot histogram.")},
                "m.observe(0.3)"),
}


def _with_child(family):
    family.labels("GET", "200").inc()
    return family


def _hot_path(key, impl_classes, repeats, min_time):
    """In one process: every implementation's metric, calibrated, then `repeats` interleaved
    runs. Returns {impl name: [CPU ns per call of each run]}."""
    _, setup, stmt = HOT_PATHS[key]
    timers = []
    errors = {}
    for cls in impl_classes:
        impl = None
        try:
            impl = cls()
            ns = setup(impl)
        except Exception:
            if impl is not None:
                impl.close()
            if cls is not ShmetricsDropin:
                raise
            errors[cls.name] = traceback.format_exc()  # work in progress: reported, not fatal
            continue
        timer = timeit.Timer("\n".join([stmt] * UNROLL), globals=ns, timer=time.process_time)
        timers.append((cls.name, impl, timer))
    runs = {name: [] for name, _, _ in timers}
    loops = {}
    try:
        for name, _, timer in timers:  # calibrate: loops for min_time CPU seconds
            n = 1
            while True:
                t = timer.timeit(n)
                if t >= min_time / 10 or n >= 1 << 30:
                    break
                n *= 4
            loops[name] = max(1, int(n * min_time / max(t, 1e-9)))
        for _ in range(repeats):
            for name, _, timer in timers:
                t = timer.timeit(loops[name])
                runs[name].append(t / (loops[name] * UNROLL) * 1e9)
    finally:
        for _, impl, _ in timers:
            impl.close()
    return runs, errors


def bench_hot_paths():
    out = {}
    for key in HOT_PATHS:
        runs, errors = in_child(_hot_path, key, implementations(), ARGS.repeats, ARGS.min_time)
        out[key] = {name: {"ns_per_call": statistics.median(v), "runs": v}
                    for name, v in runs.items()}
        for name, e in errors.items():
            _progress(f"{key}: {name} failed:\n{e}")
            FAILED[name] = e.strip().splitlines()[-1]
        _progress(f"{key}: " + ", ".join(f"{n} {r['ns_per_call']:.0f} ns"
                                         for n, r in out[key].items()))
    return out


# --- series creation in forked workers, and the scrape -------------------------------------

def label_sets(worker, n, differ):
    prefix = f"/w{worker}" if differ else ""
    return [(f"{prefix}/route{i // 10}", str(200 + i % 10)) for i in range(n)]


def _sample_stats(text, name):
    """(series, sum) of the samples `name{...} value` in an exposition: checks, not timings."""
    count, total = 0, 0.0
    for m in re.finditer(rb"^" + re.escape(name.encode()) + rb"\{[^}]*\} (\S+)", text, re.M):
        count += 1
        total += float(m.group(1))
    return count, total


def _scrape_times(impl, repeats):
    """Median CPU seconds of each scrape format, and the checks of the last text scrape."""
    out = {}
    for fmt in ("prometheus", "openmetrics"):
        impl.scrape(fmt)  # warm-up, untimed
        times = []
        for _ in range(repeats):
            gc.collect()
            t0 = time.process_time()
            text = impl.scrape(fmt)
            times.append(time.process_time() - t0)
        out[fmt] = {"cpu_s": statistics.median(times), "runs": times, "bytes": len(text)}
        out[fmt]["series"], out[fmt]["sum"] = _sample_stats(text, "bench_series_total")
    return out


def _create_and_scrape(cls, workers, series, differ, scrape_repeats):
    """The master of `workers` forked workers: each creates `series` labelled series (labels()
    then inc()) and reports its CPU time; the master scrapes while they wait, then after they
    exited."""
    impl = cls(max_children=series * (workers if differ else 1))
    try:
        family = impl.counter("bench_series", "Series created by forked workers.",
                              ["route", "code"])
        sets = [label_sets(w, series, differ) for w in range(workers)]  # built before fork
        go_r, go_w = os.pipe()
        exit_r, exit_w = os.pipe()
        results = [os.pipe() for _ in range(workers)]  # one pipe per worker: no interleaving
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pids = []
        for w in range(workers):
            pid = os.fork()
            if pid == 0:
                status = 0
                try:
                    os.close(go_w)
                    os.close(exit_w)
                    res_w = results[w][1]
                    for r, wr in results:
                        os.close(r)
                        if wr != res_w:
                            os.close(wr)
                    impl.attach_worker()
                    mine = sets[w]
                    _read_exact(go_r, 1)  # every worker starts at once
                    t0 = time.process_time()
                    for values in mine:
                        family.labels(*values).inc()
                    cpu = time.process_time() - t0
                    _send(res_w, ("ok", cpu))
                    os.read(exit_r, 1)  # alive until the master has scraped (EOF = exit)
                except BaseException:
                    _send(res_w, ("error", traceback.format_exc()))
                    status = 1
                finally:
                    os._exit(status)
            pids.append(pid)
        os.close(go_r)
        os.close(exit_r)
        for _, wr in results:
            os.close(wr)
        wall0 = time.perf_counter()
        os.write(go_w, b"x" * workers)
        cpus = []
        for r, _ in results:
            kind, value = _recv(r)
            os.close(r)
            if kind == "error":
                raise RuntimeError("worker failed:\n" + value)
            cpus.append(value)
        wall = time.perf_counter() - wall0
        alive = _scrape_times(impl, scrape_repeats)
        os.close(exit_w)  # the workers exit
        for pid in pids:
            os.waitpid(pid, 0)
        usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        exited = _scrape_times(impl, scrape_repeats)
        os.close(go_w)
        return {
            "worker_cpu_s": sorted(cpus),
            "worker_cpu_median_s": statistics.median(cpus),
            "workers_cpu_total_s": sum(cpus),
            "children_rusage_s": (usage1.ru_utime + usage1.ru_stime)
                                 - (usage0.ru_utime + usage0.ru_stime),
            "wall_s": wall,
            "scrape_alive": alive,
            "scrape_exited": exited,
        }
    finally:
        impl.close()


def bench_create():
    out = {}
    cases = [False] if ARGS.no_differ else [False, True]
    for differ in cases:
        case = "differ" if differ else "same"
        out[case] = {}
        for cls in implementations():
            try:
                r = in_child(_create_and_scrape, cls, ARGS.workers, ARGS.series, differ,
                             ARGS.scrape_repeats)
            except RuntimeError as e:
                if cls is not ShmetricsDropin:
                    raise
                _progress(f"create {case}: {cls.name} failed: {e}")
                FAILED[cls.name] = str(e).strip().splitlines()[-1]
                continue
            expected_series = ARGS.series * (ARGS.workers if differ else 1)
            for when in ("scrape_alive", "scrape_exited"):
                for fmt, s in r[when].items():
                    if s["series"] != expected_series or s["sum"] != ARGS.series * ARGS.workers:
                        raise RuntimeError(
                            f"{cls.name} {case} {when} {fmt}: {s['series']} series summing to "
                            f"{s['sum']}, expected {expected_series} summing to "
                            f"{ARGS.series * ARGS.workers}")
            out[case][cls.name] = r
            _progress(f"create {case}: {cls.name} {r['worker_cpu_median_s'] * 1e3:.1f} ms/worker,"
                      f" scrape {r['scrape_alive']['prometheus']['cpu_s'] * 1e3:.1f} ms")
    return out


# --- report --------------------------------------------------------------------------------

FAILED = {}  # implementation name -> the last line of its error (the drop-in only)


def _progress(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def _fmt_time(seconds):
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _ratio(x, base):
    return x / base if base else float("nan")


def _fmt_ratio(r):
    """A ratio below 1 as 1/N (two significant digits: 1/53, 1/5.6), else as N×."""
    if r != r:
        return "n/a"
    if r >= 1:
        return f"{r:.2f}×"
    inv = 1 / r
    return f"1/{inv:.0f}" if inv >= 9.95 or abs(inv - round(inv)) < 1e-9 else f"1/{inv:.1f}"


def report(results):
    pc, nat, dr = PrometheusClientMP.name, ShmetricsNative.name, ShmetricsDropin.name
    have_dropin = dropin is not None
    rows = []  # (label, pc seconds, {impl: seconds}, target key or None)
    for key, r in results.get("hot", {}).items():
        rows.append((HOT_PATHS[key][0] + ", per call",
                     r[pc]["ns_per_call"] * 1e-9,
                     {n: r[n]["ns_per_call"] * 1e-9 for n in (nat, dr) if n in r}, key))
    for case, r in results.get("create", {}).items():
        what = "same label sets" if case == "same" else "label sets differ per worker"
        n_series = ARGS.series * (ARGS.workers if case == "differ" else 1)
        rows.append((f"create {ARGS.series:,} series in each of {ARGS.workers} workers ({what}),"
                     f" CPU per worker", r[pc]["worker_cpu_median_s"],
                     {n: r[n]["worker_cpu_median_s"] for n in (nat, dr) if n in r}, None))
        for when, label in (("scrape_alive", "workers alive"), ("scrape_exited", "after exit")):
            for fmt in ("prometheus", "openmetrics"):
                rows.append((f"scrape {n_series:,} series ({what}), {fmt} text, {label}",
                             r[pc][when][fmt]["cpu_s"],
                             {n: r[n][when][fmt]["cpu_s"] for n in (nat, dr) if n in r},
                             "scrape"))
    lines = []
    head = ["Benchmark (CPU time)", "prometheus_client mp", "shmetrics", "ratio"]
    if have_dropin:
        head += ["shmetrics.prometheus_client", "ratio"]
    head += ["target", "met (shmetrics / drop-in)" if have_dropin else "met"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 3) + ["---:", "---"]) + "|")
    misses = []
    for label, base, mine, target in rows:
        cells = [label, _fmt_time(base)]
        verdicts = []
        for n in [nat] + ([dr] if have_dropin else []):
            if n in mine:
                r = _ratio(mine[n], base)
                cells += [_fmt_time(mine[n]), _fmt_ratio(r)]
                if target:
                    ok = r <= TARGETS[target]
                    verdicts.append(ok)
                    if not ok:
                        misses.append(f"{label} ({n}): {_fmt_ratio(r)} > "
                                      f"{_fmt_ratio(TARGETS[target])}")
            else:
                cells += ["n/a", "n/a"]
        if target:
            cells += [f"≤ {_fmt_ratio(TARGETS[target])}",
                      " / ".join("met" if v else "**NOT met**" for v in verdicts)]
        else:
            cells += ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines, misses


def environment():
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "prometheus_client": getattr(prometheus_client, "__version__", None)
        or _debian_version(),
        "shmetrics": shmetrics.__version__,
        "dropin": dropin is not None,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
    }


def _debian_version():
    try:
        from importlib.metadata import version
        return version("prometheus_client")
    except Exception:
        return "unknown"


def main():
    results = {"args": vars(ARGS)}
    try:
        if ARGS.only in (None, "hot"):
            results["hot"] = bench_hot_paths()
        if ARGS.only in (None, "create"):
            results["create"] = bench_create()
    finally:
        shutil.rmtree(_TMP, ignore_errors=True)
    env = environment()
    results["environment"] = env
    lines, misses = report(results)
    print(f"shmetrics {env['shmetrics']} beside prometheus_client {env['prometheus_client']} "
          f"(multiprocess mode), Python {env['python']} ({env['executable']}), {env['cpus']} CPUs, "
          f"load average at the end {env['loadavg'][0]:.2f} / {env['loadavg'][1]:.2f} / "
          f"{env['loadavg'][2]:.2f}; {env['date']}.")
    print(f"Hot paths: median of {ARGS.repeats} runs of ≥ {ARGS.min_time} CPU s; scrapes: median"
          f" of {ARGS.scrape_repeats}; ratio = shmetrics / prometheus_client.")
    if dropin is None:
        print("drop-in not available: shmetrics.prometheus_client has no Counter yet.")
    for name, err in FAILED.items():
        print(f"{name} failed in some benchmarks (n/a below): {err}")
    if ARGS.quick:
        print("--quick: a smoke run; these numbers mean nothing.")
    print()
    print("\n".join(lines))
    print()
    if misses:
        print("Targets missed:")
        for m in misses:
            print(f"- {m}")
    else:
        print("Every target met.")
    if ARGS.json:
        results["missed"] = misses
        os.makedirs(os.path.dirname(os.path.abspath(ARGS.json)), exist_ok=True)
        with open(ARGS.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
