# gunicorn config for gunicorn_app.py: the shared heap and its exposer, from shmetrics.gunicorn.
#   /usr/bin/python3 -m gunicorn -c gunicorn.conf.py gunicorn_app:app
# Environment: SHMETRICS_HEAP (heap name, default "gunicorn-example"), METRICS_PORT (default
# 9464; 0 picks a free port, logged and written to $METRICS_PORT_FILE if set).
import os

from shmetrics.gunicorn import hooks

bind = "127.0.0.1:8000"
workers = 4

globals().update(hooks(os.environ.get("SHMETRICS_HEAP", "gunicorn-example"),
                       metrics_port=int(os.environ.get("METRICS_PORT", "9464")),
                       port_file=os.environ.get("METRICS_PORT_FILE")))
