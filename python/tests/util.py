"""Helpers of the Python suite: real parsers for expositions, bounded waits for processes."""

import os
import signal
import time

from prometheus_client.openmetrics import parser as om_parser
from prometheus_client import parser as text_parser

import shmetrics


def families(heap):
    """The heap's exposition parsed by prometheus_client's OpenMetrics parser: {name: family}.

    Also checks that the Prometheus text format of the same heap parses."""
    om = shmetrics.expose(heap, "openmetrics").decode()
    parsed = {f.name: f for f in om_parser.text_string_to_metric_families(om)}
    list(text_parser.text_string_to_metric_families(shmetrics.expose(heap, "prometheus").decode()))
    return parsed


def sample_value(heap, sample_name, **labels):
    """The value of one sample of the heap's exposition, or None when there is none."""
    for family in families(heap).values():
        for s in family.samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def wait_pid(pid, timeout=60):
    """Waits for a child with a bound; kills it and fails when it does not end in time."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"child {pid} did not exit within {timeout} s")
        time.sleep(0.01)


def fork_call(f, *args):
    """Runs f(*args) in a forked child that exits with 0 when it returns, 1 when it raises."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            f(*args)
            code = 0
        except BaseException:  # reported through the exit code; the trace on stderr
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid
