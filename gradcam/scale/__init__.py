"""Scaling out with Ray: a dataset job (Ray Data) and a service (Ray Serve), with the
wire format between the service and the dashboard. Needs requirements-ray.txt."""

# The service's client only: importing this never imports Ray (the dashboard uses it).
from .wire import explain_remote

__all__ = ["explain_remote"]
