"""A WSGI application serving a heap's exposition, for apps that serve /metrics themselves."""

import gzip

from . import _shmetrics as _native

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def negotiate(accept):
    """The exposition format an Accept header asks for: 'openmetrics' or 'prometheus'."""
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media == "application/openmetrics-text":
            return "openmetrics"
    return "prometheus"


def content_type(fmt):
    return OPENMETRICS_CONTENT_TYPE if fmt == "openmetrics" else PROMETHEUS_CONTENT_TYPE


def _accepts_gzip(header):
    for part in (header or "").split(","):
        fields = part.split(";")
        if fields[0].strip().lower() != "gzip":
            continue
        q = 1.0
        for p in fields[1:]:
            name, _, value = p.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        return q > 0
    return False


def make_wsgi_app(heap, disable_compression=False):
    """A WSGI app answering GET and HEAD with one exposition of `heap` (any path).

    The format follows the Accept header (OpenMetrics when asked for, else the Prometheus text
    format); the body is gzipped when Accept-Encoding allows and disable_compression is false.
    A HEAD sends the headers only and, like the C++ exposer, leaves the maxima for the next GET.
    """

    def app(environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"),
                                                       ("Content-Type", "text/plain")])
            return [b"Method Not Allowed\n"]
        fmt = negotiate(environ.get("HTTP_ACCEPT"))
        headers = [("Content-Type", content_type(fmt))]
        if method == "HEAD":
            start_response("200 OK", headers)
            return [b""]
        body = _native.expose(heap, fmt)
        if not disable_compression and _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    return app
