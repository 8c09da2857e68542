"""Shared, expensive test resources (one Prefect API server and one Ray instance per session), and
the marks that sort the suite into a fast lane and the rest.

A test that starts Ray, a Prefect server or any other process is marked ``ray``, ``prefect`` or
``subprocess``; ``make test-fast`` runs the others. The marks are kept honest: an unmarked test
that starts a process fails, naming the mark it needs (Ray and Prefect's server start processes
too, so this catches them)."""

import subprocess

import pytest

PROCESS_MARKS = ("ray", "prefect", "subprocess")


def pytest_collection_modifyitems(items):
    """Tests that use the session's Ray or Prefect server are marked for it."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "ray_session" in fixtures:
            item.add_marker(pytest.mark.ray)
        if "prefect_server" in fixtures:
            item.add_marker(pytest.mark.prefect)


@pytest.fixture(autouse=True)
def _processes_only_where_marked(request, monkeypatch):
    if any(request.node.get_closest_marker(mark) for mark in PROCESS_MARKS):
        return

    def refuse(self, args, *rest, **kwargs):
        raise AssertionError(f"this test starts a process ({args!r}); mark it with one of "
                             f"{', '.join('pytest.mark.' + m for m in PROCESS_MARKS)}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


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
