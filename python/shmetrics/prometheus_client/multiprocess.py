"""prometheus_client.multiprocess compatibility (work in progress)."""
