"""When and where training runs: the Prefect flow, the CLI, deployments. The only package that
imports Prefect."""

import logging
import os

# Set before Prefect is imported, so that a first run on a fresh, offline machine works:
# the temporary API server's database migrations take ~30 s there (Prefect's default start-up
# timeout is 20 s), and telemetry has nowhere to go.
_PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # Progress of a long local search (pipeline/solving/improve.py) shows in the run's log.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "intnet",
}
for _key, _value in _PREFECT_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
# ... at INFO, the level the run's own lines use (Python's default for a new logger is WARNING).
logging.getLogger("intnet").setLevel(logging.INFO)
