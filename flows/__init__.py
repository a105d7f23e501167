"""Prefect flows, deployments and the `chfen` command line. The only layer that imports Prefect."""
