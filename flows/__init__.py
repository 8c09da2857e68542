"""When and where training runs: the Prefect flow, the CLI, deployments. The only package that
imports Prefect, and only where a run uses it: `intnet train` without a Prefect API runs the
pipeline directly, and the estimator's run scope (flows.run_scope) imports nothing of Prefect."""

import os

# Set before Prefect is imported, so that a first run on a fresh, offline machine works:
# the temporary API server's database migrations take ~30 s there (Prefect's default start-up
# timeout is 20 s), and telemetry has nowhere to go.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def set_prefect_defaults() -> None:
    """Put :data:`PREFECT_DEFAULTS` in the environment where not set already (Prefect reads its
    settings once, when it is imported). Called by whatever imports Prefect here, not on importing
    this package: the estimator imports flows.run_scope, and its users' environment is theirs."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
