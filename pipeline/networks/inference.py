"""Using a stored network: load it, predict class labels for raw rows, score it on given sets,
describe it. Numpy and pyarrow only: a stored network is used without the MIP stack (evaluating
it on the run's own split, which needs the run's configuration, is :mod:`pipeline.stored`)."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from formulations import IntegerNetwork
from formulations.network import bits_for, layered_size_bits, nonzero_parameters
from pipeline.data.datasets import feature_table, read_table
from pipeline.data.preprocessing import Preprocessor
from pipeline.errors import DataError, NetworkFileError, brief
from pipeline.networks.calibration import scores
from pipeline.networks.ensembles import Ensemble, EnsembleKind
from pipeline.networks.storage import StoredNetwork, read_network, replacing


@dataclass(frozen=True)
class LoadedModel:
    stored: StoredNetwork
    preprocessor: Preprocessor
    path: Path

    @property
    def network(self) -> IntegerNetwork:
        """The network of a single-network file (an error for an ensemble's)."""
        return self.stored.network

    @property
    def ensemble(self) -> Ensemble:
        """What predicts: the file's ensemble, a single network being one member."""
        return self.stored.ensemble

    @property
    def label(self) -> str | None:
        return self.stored.preprocessing.get("label")

    def _inputs(self, rows) -> np.ndarray:
        """The network's inputs for raw rows, through the file's preprocessing."""
        x = self.preprocessor.transform(feature_table(rows, [c.name for c in self.preprocessor.columns]))
        check_inputs(self, x, "the rows")
        return x

    def predict(self, rows) -> np.ndarray:
        """Class names for raw rows: a table, a DataFrame, or a 2-D array in the file's column order."""
        return np.array(self.stored.classes, dtype=object)[self.ensemble.predict(self._inputs(rows))]

    def predict_proba(self, rows) -> np.ndarray:
        """Each class's probability for raw rows (rows × classes, in the order of ``stored.classes``),
        from the file's calibration (:mod:`pipeline.networks.calibration`); its argmax is ``predict``."""
        if self.stored.calibration is None:
            raise DataError(f"{self.path} has no calibration (written before intnet stored one, or changed with no "
                            "validation split to fit one on); train it again for probabilities")
        return self.stored.calibration.probabilities(scores(self.ensemble, self._inputs(rows)))


def load_model(path: str | Path) -> LoadedModel:
    stored = read_network(path)
    try:
        preprocessor = Preprocessor.from_json(stored.preprocessing)
    except NetworkFileError as error:
        raise NetworkFileError(f"{path}: {error}") from None
    label = stored.preprocessing.get("label")
    if label is not None and not isinstance(label, str):
        raise NetworkFileError(f"{path}: intnet.preprocessing key 'label' must be a string, got {brief(label)}")
    if len(preprocessor.feature_names) != stored.ensemble.n_inputs:
        raise NetworkFileError(
            f"{path}: the preprocessing makes {len(preprocessor.feature_names)} inputs, the network takes "
            f"{stored.ensemble.n_inputs}"
        )
    return LoadedModel(stored, preprocessor, Path(path))


def check_inputs(model: LoadedModel, x: np.ndarray, source: str) -> None:
    if x.shape[1] != model.ensemble.n_inputs:
        raise DataError(f"{source} has {x.shape[1]} inputs, the network takes {model.ensemble.n_inputs}")


def accuracies(model: IntegerNetwork | Ensemble, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Each set's accuracy; for an ensemble of several members also each member's (on the rows of
    its classes) and the rows whose vote was tied."""
    report = {name: {"rows": int(len(y)), "accuracy": model.accuracy(x, y)} for name, (x, y) in sets.items()}
    if isinstance(model, Ensemble) and not model.is_single:
        for name, (x, y) in sets.items():
            report[name] |= {"tied_votes": model.tied_votes(x), "members": model.member_accuracies(x, y)}
    return report


def predict_file(model: LoadedModel, path: str | Path) -> list[str]:
    """Class labels, one per row of the file; columns the network was not trained on are ignored."""
    table = read_table(path)
    x = model.preprocessor.transform(table)
    check_inputs(model, x, str(path))
    return [model.stored.classes[i] for i in model.ensemble.predict(x)]


def write_predictions(labels: list[str], out: str | Path | None) -> None:
    """A CSV with one column ``prediction``, to ``out`` (atomically) or to standard output."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["prediction"])
    writer.writerows([label] for label in labels)
    if out is None:
        sys.stdout.write(buffer.getvalue())
        return
    with replacing(out) as handle:
        handle.write(buffer.getvalue().encode())


def describe(model: LoadedModel) -> dict[str, Any]:
    """What ``intnet info`` shows. ``neurons_kept`` and ``neurons_trained`` are the hidden widths
    stored and trained (they differ once switched-off neurons were stripped); ``size_bits_before_strip``
    the size of the architecture trained. A file written without neuron optimisation has both the same.
    ``size_bits`` counts each layer's parameters in the bits of the range the file records for it
    (``layer_bounds``, written by compression; else [−P, P], ``bits_per_parameter`` each); ``compressed`` the
    neurons, non-zero parameters and bits before and after compression (None without);
    ``calibration`` the file's ``intnet.calibration`` (None without: no probabilities). For an
    ensemble, the first member's architecture and the ensemble's members, sizes and tied votes."""
    ensemble = model.ensemble
    network = ensemble.networks[0]
    provenance = model.stored.provenance
    accuracy = provenance.get("accuracy", {}).get("final", {})
    trained = provenance.get("sizes_before_strip", network.sizes)
    bounds = provenance.get("layer_bounds", [network.P] * len(network.weights))
    members = {}
    if not ensemble.is_single:
        members = {
            "ensemble": str(ensemble.kind), "members": len(ensemble.networks),
            "member_architectures": ["-".join(map(str, n.sizes)) for n in ensemble.networks],
            "member_classes": ensemble.pairs if ensemble.kind == EnsembleKind.ONE_VS_ONE else None,
            "ensemble_parameters": ensemble.n_parameters, "ensemble_size_bits": ensemble.size_bits,
            "tied_votes": provenance.get("tied_votes"),
            "member_accuracies": [m.get("final") for m in provenance.get("members", [])],
        }
    return members | {
        "architecture": "-".join(map(str, network.sizes)),
        "P": network.P,
        "parameters": network.n_parameters,
        "nonzero_parameters": nonzero_parameters(network),
        "size_bits": layered_size_bits(network, bounds),
        "bits_per_parameter": network.bits_per_parameter,
        "layer_bounds": bounds,
        "bits_per_layer": [bits_for(bound) for bound in bounds],
        "neurons_kept": network.sizes[1:-1],
        "neurons_trained": trained[1:-1],
        "size_bits_before_strip": provenance.get("size_bits_before_strip", network.size_bits),
        "neuron_penalty": provenance.get("config", {}).get("neuron_penalty"),
        "classes": list(model.stored.classes),
        "formulation": provenance.get("formulation"),
        "dataset": provenance.get("dataset"),
        "n_train": provenance.get("n_train"),
        "train_accuracy": accuracy.get("train"),
        "validation_accuracy": accuracy.get("validation"),
        "test_accuracy": accuracy.get("test"),
        "batches": len(provenance.get("batches", [])),
        "compressed": compression_summary(provenance.get("compressed")),
        "constraints": provenance.get("constraints"),
        "calibration": None if model.stored.calibration is None else model.stored.calibration.as_json(),
    }


def compression_summary(report: dict | None) -> dict | None:
    """Neurons, non-zero parameters and bits before and after compression, from its report."""
    if report is None:
        return None
    return {side: report.get(side) for side in ("before", "after")}


def constraint_lines(constraints: dict) -> list[str]:
    """The certificate as the terminal and ``intnet info`` show it: one line per constraint."""
    def pct(entry, key="value"):
        return "n/a" if entry is None or entry.get(key) is None else f"{100 * entry[key]:.1f}%"

    lines = [f"constraints (start: {constraints.get('repair')}):"]
    for check in constraints.get("checks", []):
        mark = "holds" if check.get("holds") else "BROKEN"
        if check.get("constraint") == "fair":
            gaps = ", ".join(f"{name} {100 * check[name]['gap']:.1f} [{100 * check[name]['low']:.1f}, "
                             f"{100 * check[name]['high']:.1f}]" for name in ("train", "validation", "test")
                             if isinstance(check.get(name), dict) and "gap" in check[name])
            lines.append(f"  fair {check['column']}:{check['kind']} gap <= {100 * check['bound']:.1f} points on train: "
                         f"{mark}; gap % (95 % interval) {gaps}")
        elif check.get("constraint") == "min_recall":
            values = ", ".join(f"{name} {pct(check.get(name))} [{pct(check.get(name), 'low')}, {pct(check.get(name), 'high')}]"
                               for name in ("train", "validation", "test") if isinstance(check.get(name), dict))
            lines.append(f"  recall of {check['class']} >= {100 * check['bound']:.1f}% on train: {mark}; {values}")
        elif check.get("constraint") == "monotone":
            proof = "proven from the weights (orientations " + str(check.get("orientations")) + ")" \
                if check.get("holds") else "no proof from the weights"
            lines.append(f"  monotone {check['column']}:{check['direction']}: {mark}, {proof}")
    return lines

