"""The Ray executor's process settings, checked on real Ray workers."""

import os


def test_ray_workers_run_at_the_drivers_priority(ray_session):
    # Ray's default worker niceness (15) starves the solving actors beside any busy process.
    @ray_session.remote
    def niceness() -> int:
        return os.nice(0)

    assert ray_session.get(niceness.remote()) == os.nice(0)
