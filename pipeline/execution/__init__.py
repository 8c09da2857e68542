"""The execution stage: where a run's batches are solved. The executor interface and the in-process
executor (executors.py), and the pool of Ray actors (ray_executor.py), the only module that imports
Ray."""
