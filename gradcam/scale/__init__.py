"""Scaling out with Ray: a dataset job (Ray Data) and a service (Ray Serve), with the
wire format between the service and the dashboard. Needs requirements-ray.txt."""
