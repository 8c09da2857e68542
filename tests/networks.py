"""Helpers the model tests share: grid inputs, random and enumerated integer networks."""

import functools
import itertools

import numpy as np

from formulations import IntegerNetwork, TrainingProblem
from formulations.network import active_neurons
from pipeline.solving.solve import SolverOptions

EXACT = SolverOptions(time_limit=60, threads=1, mip_gap=0.0, target_error=None)
"""Solve to proven optimality: what a brute-force comparison needs."""


def grid_inputs(rng, n, d):
    """n examples of d inputs on the 10^-4 grid in [0, 1], like preprocessed data."""
    return np.round(rng.random((n, d)), 4)


def random_network(rng, sizes, P):
    return IntegerNetwork(
        weights=tuple(rng.integers(-P, P + 1, (o, i)) for i, o in zip(sizes[:-1], sizes[1:])),
        biases=tuple(rng.integers(-P, P + 1, o) for o in sizes[1:]),
        P=P,
    )


@functools.cache
def every_network(sizes: tuple[int, ...], P: int) -> tuple[IntegerNetwork, ...]:
    """Every integer network of the architecture (for brute force on tiny instances)."""
    shapes = [(o, i) for i, o in zip(sizes[:-1], sizes[1:])]
    networks = []
    for values in itertools.product(range(-P, P + 1), repeat=sum(o * i + o for o, i in shapes)):
        values = np.array(values)
        weights, biases, at = [], [], 0
        for o, i in shapes:
            weights.append(values[at:at + o * i].reshape(o, i))
            biases.append(values[at + o * i:at + o * i + o])
            at += o * i + o
        networks.append(IntegerNetwork(tuple(weights), tuple(biases), P))
    return tuple(networks)


def two_neuron_teacher(seed, inputs=3, width=8, n=40):
    """(teacher, problem): a random P = 1 teacher with two active hidden neurons of ``width``, the
    others all zero, labelling n grid inputs (both classes at least a quarter)."""
    rng = np.random.default_rng(seed)
    while True:
        small = random_network(rng, [inputs, 2, 2], 1)
        x = grid_inputs(rng, n, inputs)
        y = small.predict(x)
        if active_neurons(small)[0].all() and n // 4 <= y.sum() <= n - n // 4:
            break
    w0, b0, w1 = np.zeros((width, inputs), int), np.zeros(width, int), np.zeros((2, width), int)
    w0[:2], b0[:2], w1[:, :2] = small.weights[0], small.biases[0], small.weights[1]
    return IntegerNetwork((w0, w1), (b0, small.biases[1]), 1), TrainingProblem(x, y, 2, (width,), 1)


class StepClock:
    """A local search's clock that moves only when a step is solved, by ``step_seconds``: a search's
    course, steps and end depend on the data and the seeds, never on the machine's speed or load.
    :meth:`solver` is the matching ``solve_many`` for :func:`pipeline.solving.improve.improve`."""

    def __init__(self, step_seconds: float = 0.5):
        self.now = 0.0
        self.step_seconds = step_seconds

    def __call__(self) -> float:
        return self.now

    def solver(self, formulation, problem, capped_below: float = 0.0, limits: list | None = None,
               exact: bool = True):
        """Steps solved exactly (the real solver given a minute, far beyond what these tiny
        sub-MIPs need), except that a step given less than ``capped_below`` (fake) seconds stops
        at its limit and finds nothing, as a sub-MIP too hard for its limit; ``limits`` records
        each limit given. Not ``exact``: the real solver gets the step's limit in real seconds
        (for checks that hold whatever a step finds, such as monotony, with a bounded duration)."""
        from dataclasses import replace

        from pipeline.solving.improve import StepResult, solve_neighbourhood
        from pipeline.solving.solve import SolveStatus

        def solve_many(network, objective, areas, options):
            if limits is not None:
                limits.append(options.time_limit)
            self.now += self.step_seconds
            if options.time_limit < capped_below:
                return [StepResult(network, objective, SolveStatus.TIME_LIMIT) for _ in areas]
            given = replace(options, time_limit=60.0) if exact else options
            return [solve_neighbourhood(formulation, problem, network, objective, area, given) for area in areas]

        return solve_many
