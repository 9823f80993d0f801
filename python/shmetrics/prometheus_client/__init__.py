"""A drop-in for prometheus_client (work in progress)."""
