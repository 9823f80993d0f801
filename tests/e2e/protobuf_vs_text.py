"""Checks a protobuf exposition against an OpenMetrics one of the same heap state.

usage: protobuf_vs_text.py PB2_DIR PROTOBUF_FILE OPENMETRICS_FILE [--ignore NAME]...
       protobuf_vs_text.py PB2_DIR PROTOBUF_FILE --print

The protobuf is decoded with libprotobuf's Python module and classes that protoc generated from
src/expose/metrics.proto (in PB2_DIR); the text is parsed by python3-prometheus-client's
OpenMetrics parser. Both become the samples Prometheus would ingest (the protobuf read the way
Prometheus's protobuf parser reads it: family names as they are, `_bucket`, `_count` and `_sum`
added for histograms and summaries, an implicit +Inf bucket), which must be equal: names, labels,
values, created timestamps, exemplars, and each family's type, help and unit.

A native histogram has no native buckets in text, where it is a histogram with only the +Inf
bucket: it is compared as that, and its native buckets are checked to add up to its count.

--ignore leaves out the samples named NAME, whose values depend on when they were read (an age
gauge).
--print writes the protobuf's samples, one `name{labels} value` per line, and exits.
Exit status 0 when they match; 1 with the differences on stdout otherwise.
"""

import math
import sys

sys.path.insert(0, sys.argv[1])

import metrics_pb2  # noqa: E402  (generated into PB2_DIR)
from prometheus_client.openmetrics import parser  # noqa: E402

NUMBER_LABELS = ("le", "quantile")
PB_TYPE = {
    "counter": metrics_pb2.COUNTER,
    "gauge": metrics_pb2.GAUGE,
    "histogram": metrics_pb2.HISTOGRAM,
    "summary": metrics_pb2.SUMMARY,
    "info": metrics_pb2.GAUGE,
    "stateset": metrics_pb2.GAUGE,
    "unknown": metrics_pb2.UNTYPED,
}


def key(name, labels):
    """A sample's identity; le and quantile compared as numbers, not as their text."""
    items = []
    for k, v in labels.items():
        items.append((k, repr(float(v)) if k in NUMBER_LABELS else v))
    return (name, tuple(sorted(items)))


def show(k):
    name, labels = k
    return name + "{" + ",".join('%s="%s"' % kv for kv in labels) + "}"


def families(data):
    """The MetricFamily messages of a delimited stream."""
    pos = 0
    while pos < len(data):
        length, shift = 0, 0
        while True:
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if pos + length > len(data):
            raise ValueError("truncated message at byte %d" % pos)
        mf = metrics_pb2.MetricFamily()
        mf.ParseFromString(data[pos : pos + length])
        pos += length
        yield mf


def timestamp(ts):
    return ts.seconds + ts.nanos / 1e9


def pb_exemplar(e):
    return (
        {lp.name: lp.value for lp in e.label},
        e.value,
        timestamp(e.timestamp) if e.HasField("timestamp") else None,
    )


def native_total(h, errors, where):
    """Checks that the native buckets and the zero bucket add up to the count."""
    total = h.zero_count
    for spans, deltas in ((h.positive_span, h.positive_delta), (h.negative_span, h.negative_delta)):
        if sum(s.length for s in spans) != len(deltas):
            errors.append("%s: spans cover %d buckets, %d deltas"
                          % (where, sum(s.length for s in spans), len(deltas)))
        count = 0
        for d in deltas:
            count += d
            if count < 0:
                errors.append("%s: a bucket count below zero" % where)
            total += count
    if total != h.sample_count:
        errors.append("%s: buckets add up to %d, count is %d" % (where, total, h.sample_count))


def from_protobuf(data, errors, natives):
    samples, created, exemplars, meta = {}, {}, {}, {}
    for mf in families(data):
        meta[mf.name] = (mf.type, mf.help, mf.unit)
        for m in mf.metric:
            labels = {lp.name: lp.value for lp in m.label}

            def add(suffix, value, extra=None):
                k = key(mf.name + suffix, dict(labels, **(extra or {})))
                if k in samples:
                    errors.append("protobuf: %s twice" % show(k))
                samples[k] = value
                return k

            def add_created(base, msg):
                if msg.HasField("created_timestamp"):
                    created[key(base + "_created", labels)] = timestamp(msg.created_timestamp)

            if mf.type == metrics_pb2.COUNTER:
                k = add("", m.counter.value)
                if m.counter.HasField("exemplar"):
                    exemplars[k] = pb_exemplar(m.counter.exemplar)
                base = mf.name[: -len("_total")] if mf.name.endswith("_total") else mf.name
                add_created(base, m.counter)
            elif mf.type == metrics_pb2.GAUGE:
                add("", m.gauge.value)
            elif mf.type == metrics_pb2.UNTYPED:
                add("", m.untyped.value)
            elif mf.type == metrics_pb2.SUMMARY:
                for q in m.summary.quantile:
                    add("", q.value, {"quantile": q.quantile})
                add("_count", m.summary.sample_count)
                add("_sum", m.summary.sample_sum)
                add_created(mf.name, m.summary)
            elif mf.type == metrics_pb2.HISTOGRAM:
                h = m.histogram
                native = (len(h.positive_span) or len(h.negative_span) or h.zero_threshold > 0
                          or h.zero_count > 0)
                has_inf = False
                for b in h.bucket:
                    k = add("_bucket", b.cumulative_count, {"le": b.upper_bound})
                    has_inf = has_inf or math.isinf(b.upper_bound)
                    if b.HasField("exemplar"):
                        exemplars[k] = pb_exemplar(b.exemplar)
                if not has_inf:
                    k = add("_bucket", h.sample_count, {"le": math.inf})
                    if native and len(h.exemplars):
                        exemplars[k] = pb_exemplar(h.exemplars[-1])
                if native:
                    native_total(h, errors, show(key(mf.name, labels)))
                    natives.append(show(key(mf.name, labels)))
                add("_count", h.sample_count)
                add("_sum", h.sample_sum)
                add_created(mf.name, h)
            else:
                errors.append("protobuf: family %s has type %d" % (mf.name, mf.type))
    return samples, created, exemplars, meta


def from_openmetrics(text, errors):
    samples, created, exemplars, meta = {}, {}, {}, {}
    for f in parser.text_string_to_metric_families(text):
        pb_name = f.name + {"counter": "_total", "info": "_info"}.get(f.type, "")
        unit = "" if f.type in ("info", "stateset") else f.unit
        meta[pb_name] = (PB_TYPE[f.type], f.documentation, unit)
        for s in f.samples:
            k = key(s.name, s.labels)
            if s.name.endswith("_created") and f.type in ("counter", "histogram", "summary"):
                created[k] = s.value
                continue
            if k in samples:
                errors.append("text: %s twice" % show(k))
            samples[k] = s.value
            if s.exemplar is not None:
                ts = s.exemplar.timestamp
                exemplars[k] = (dict(s.exemplar.labels), s.exemplar.value,
                                None if ts is None else float(ts))
    return samples, created, exemplars, meta


def same_number(a, b, tolerance=0.0):
    if a is None or b is None:
        return a is b
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or abs(a - b) <= tolerance


def compare(what, pb, om, equal, errors):
    for k in sorted(set(pb) | set(om), key=str):
        name = show(k) if isinstance(k, tuple) else k
        if k not in om:
            errors.append("%s only in protobuf: %s = %r" % (what, name, pb[k]))
        elif k not in pb:
            errors.append("%s only in text: %s = %r" % (what, name, om[k]))
        elif not equal(pb[k], om[k]):
            errors.append("%s differs: %s protobuf %r, text %r" % (what, name, pb[k], om[k]))


def same_exemplar(a, b):
    return a[0] == b[0] and same_number(a[1], b[1]) and same_number(a[2], b[2], 1e-6)


def main():
    with open(sys.argv[2], "rb") as f:
        data = f.read()
    errors, natives = [], []
    pb_samples, pb_created, pb_exemplars, pb_meta = from_protobuf(data, errors, natives)
    if sys.argv[3] == "--print":
        for k, v in sorted(pb_samples.items(), key=str):
            print(show(k), repr(v))
        for k, v in sorted(pb_created.items(), key=str):
            print(show(k), repr(v))
        return 0
    with open(sys.argv[3], encoding="utf-8") as f:
        om_samples, om_created, om_exemplars, om_meta = from_openmetrics(f.read(), errors)
    ignored = set(sys.argv[5::2]) if sys.argv[4:5] == ["--ignore"] else set()
    for d in (pb_samples, om_samples):
        for k in [k for k in d if k[0] in ignored]:
            del d[k]
    compare("sample", pb_samples, om_samples, same_number, errors)
    compare("created", pb_created, om_created, lambda a, b: same_number(a, b, 1e-6), errors)
    compare("exemplar", pb_exemplars, om_exemplars, same_exemplar, errors)
    compare("family", pb_meta, om_meta, lambda a, b: a == b, errors)
    if errors:
        print("\n".join(errors))
        return 1
    print("OK %d samples, %d created, %d exemplars, %d families, native: %s"
          % (len(pb_samples), len(pb_created), len(pb_exemplars), len(pb_meta),
             " ".join(natives) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
