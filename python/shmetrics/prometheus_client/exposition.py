"""generate_latest, make_wsgi_app, start_http_server and friends, as prometheus_client has them,
from the heap's native exposition."""

import gzip
import os
import threading
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .. import _wsgi
from .. import start_http_server as _native_http_server
from . import _heap
from .registry import REGISTRY, CollectorRegistry, RestrictedRegistry, _render_collectors

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE_LATEST = _wsgi.OPENMETRICS_CONTENT_TYPE


def _generate(registry, fmt):
    if isinstance(registry, CollectorRegistry):
        return registry._render(fmt)
    # A real prometheus_client registry, a restricted registry, any object with collect().
    return _render_collectors(registry, fmt)


def generate_latest(registry=REGISTRY):
    """The registry's metrics in the Prometheus text format 0.0.4, as bytes.

    For a drop-in registry this is the heap's native exposition (every process's values; no
    _created samples in this format: see generate_latest_openmetrics); any other registry is
    rendered by prometheus_client."""
    return _generate(registry, "prometheus")


def generate_latest_openmetrics(registry=REGISTRY):
    """The registry's metrics in the OpenMetrics 1.0.0 text format (with _created samples and
    exemplars), as bytes."""
    return _generate(registry, "openmetrics")


def choose_encoder(accept_header):
    """(encoder, content type) for an Accept header, as prometheus_client's."""
    if _wsgi.negotiate(accept_header) == "openmetrics":
        return generate_latest_openmetrics, OPENMETRICS_CONTENT_TYPE_LATEST
    return generate_latest, CONTENT_TYPE_LATEST


def gzip_accepted(accept_encoding_header):
    for accepted in (accept_encoding_header or "").split(","):
        if accepted.split(";")[0].strip().lower() == "gzip":
            return True
    return False


def _bake_output(registry, accept_header, accept_encoding_header, params, disable_compression):
    encoder, content_type = choose_encoder(accept_header)
    if "name[]" in params:
        registry = RestrictedRegistry(params["name[]"], registry)
    output = encoder(registry)
    headers = [("Content-Type", content_type)]
    if not disable_compression and gzip_accepted(accept_encoding_header):
        output = gzip.compress(output)
        headers.append(("Content-Encoding", "gzip"))
    return "200 OK", headers, output


def make_wsgi_app(registry=REGISTRY, disable_compression=False):
    """A WSGI app serving the registry's metrics (OpenMetrics when the Accept header asks for
    it, gzip when accepted, ``?name[]=...`` to restrict), as prometheus_client's."""

    def prometheus_app(environ, start_response):
        params = parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b""]
        status, headers, output = _bake_output(
            registry, environ.get("HTTP_ACCEPT"), environ.get("HTTP_ACCEPT_ENCODING"), params,
            disable_compression)
        start_response(status, headers)
        return [output]

    return prometheus_app


class _SilentHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def start_wsgi_server(port, addr="0.0.0.0", registry=REGISTRY):
    """Serves make_wsgi_app(registry) on a daemon thread of this process (pure Python, as
    prometheus_client's). Returns the server (``.server_port``; ``.shutdown()``)."""
    app = make_wsgi_app(registry)
    httpd = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def start_http_server(port, addr="0.0.0.0", registry=REGISTRY):
    """Starts the embedded native HTTP exposer (/metrics, a C++ thread) on the default heap.

    It serves every family of the heap, every process's values, plus the process metrics of
    each worker, whatever `registry` holds (custom collectors are left out: use
    start_wsgi_server for those). Start it in the master only, before forking workers.
    ``port=0`` picks a free port: the returned exposer's ``.port``; ``.close()`` stops it."""
    return _native_http_server(_heap.get_heap(), port=port, addr=addr)


def write_to_textfile(path, registry):
    """Writes generate_latest(registry) to `path` atomically (for node_exporter's textfile
    collector)."""
    tmppath = f"{path}.{os.getpid()}.{threading.current_thread().ident}"
    with open(tmppath, "wb") as f:
        f.write(generate_latest(registry))
    os.rename(tmppath, path)
