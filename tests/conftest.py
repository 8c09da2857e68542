"""Shared, expensive test resources: one Prefect API server and one Ray instance per session."""

import pytest


@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect server for the session (start-up takes 10-30 s; once is enough)."""
    from flows import set_prefect_defaults

    set_prefect_defaults()  # before Prefect is imported
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every test that uses actors; shut down at the end of the session."""
    from pipeline.execution.ray_executor import ensure_ray, stop_ray

    ray = ensure_ray(num_cpus=2)
    yield ray
    stop_ray()
