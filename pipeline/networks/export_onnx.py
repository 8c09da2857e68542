"""A stored network as an ONNX model of standard operators (opset 17).

Input ``x``: float32 [N, in_features], preprocessed inputs in [0, 1]; or, exported with
``raw_inputs``, float64 [N, in_features], the raw values of numeric columns (the graph scales them
as the file contract does) and the 0/1 one-hot inputs of categorical columns. Outputs ``label``:
int64 [N], the class index, and ``scores``: float32 [N, classes], the output layer's
pre-activations for a single network (as :meth:`IntegerNetwork.output` gives them), each class's
votes for an ensemble.

float32 cannot hold 0.1234 exactly, and a float32 sum of such inputs times integer weights can land
on the wrong side of 0, so the graph computes as the file contract does: it rounds x · 10^decimals
to the integer grid and runs every layer in float64, where these integer sums (below 2^53) are
exact. Hidden neurons output +1 where the pre-activation is >= 0 (so 0 gives +1) and ArgMax takes
the first maximum (the lowest index wins ties).
"""

from __future__ import annotations

import json

import numpy as np

from formulations.network import strip_neurons
from pipeline.data.preprocessing import NumericColumn, Preprocessor
from pipeline.networks.storage import StoredNetwork

OPSET = 17
IR_VERSION = 8
"""The IR version that came with opset 17, so that runtimes from then on load the model."""


def export_onnx(stored: StoredNetwork, raw_inputs: bool = False) -> bytes:
    """The serialised ONNX model for ``stored`` (README, "Exporting a network"): each member's
    layers, and for an ensemble the vote (a one-hot of each member's class, summed, then ArgMax,
    the first maximum winning, as the contract's lowest class index). With ``raw_inputs`` the graph
    also does the min-max scaling of numeric columns."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    ensemble = stored.ensemble
    preprocessor = Preprocessor.from_json(stored.preprocessing)
    scale = float(10**preprocessor.decimals)
    initializers = [
        numpy_helper.from_array(np.array(scale), "input_scale"),
        numpy_helper.from_array(np.array(0.0), "zero"),
        numpy_helper.from_array(np.array(1.0), "plus_one"),
        numpy_helper.from_array(np.array(-1.0), "minus_one"),
    ]
    if raw_inputs:
        nodes = _scaling(preprocessor, initializers)
    else:
        nodes = [helper.make_node("Cast", ["x"], ["x_double"], to=TensorProto.DOUBLE),
                 helper.make_node("Mul", ["x_double", "input_scale"], ["x_scaled"])]
    nodes.append(helper.make_node("Round", ["x_scaled"], ["a0"]))  # the contract's integer inputs
    networks = [strip_neurons(network) for network in ensemble.networks]
    outputs = []
    for m, network in enumerate(networks):
        prefix = "" if ensemble.is_single else f"m{m}_"
        outputs.append(_member_layers(network, prefix, nodes, initializers))
    if ensemble.is_single:
        nodes.append(helper.make_node("ArgMax", [outputs[0]], ["label"], axis=1, keepdims=0, select_last_index=0))
        scores = outputs[0]
        if len(networks[0].weights) == 1:
            # the only layer reads the inputs: IntegerNetwork gives its sums on the inputs' scale
            nodes.append(helper.make_node("Div", [scores, "input_scale"], ["z_inputs_scale"]))
            scores = "z_inputs_scale"
        nodes.append(helper.make_node("Cast", [scores], ["scores"], to=TensorProto.FLOAT))
    else:
        initializers += [numpy_helper.from_array(np.array(ensemble.n_classes, dtype=np.int64), "n_classes"),
                         numpy_helper.from_array(np.array([0.0, 1.0], dtype=np.float32), "off_on")]
        for m, (last, classes) in enumerate(zip(outputs, ensemble.member_classes)):
            initializers.append(numpy_helper.from_array(np.array(classes, dtype=np.int64), f"m{m}_classes"))
            nodes += [
                helper.make_node("ArgMax", [last], [f"m{m}_output"], axis=1, keepdims=0, select_last_index=0),
                helper.make_node("Gather", [f"m{m}_classes", f"m{m}_output"], [f"m{m}_class"]),
                helper.make_node("OneHot", [f"m{m}_class", "n_classes", "off_on"], [f"m{m}_vote"], axis=-1),
            ]
        nodes += [
            helper.make_node("Sum", [f"m{m}_vote" for m in range(len(outputs))], ["scores"]),
            helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0, select_last_index=0),
        ]
    what = (f"network {'-'.join(map(str, networks[0].sizes))}" if ensemble.is_single else
            f"{ensemble.kind} ensemble of {len(networks)} networks")
    inputs = ("raw values of numeric columns (scaled in the graph) and 0/1 one-hot inputs of categorical ones"
              if raw_inputs else "preprocessed inputs in [0, 1]")
    graph = helper.make_graph(
        nodes, "intnet",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE if raw_inputs else TensorProto.FLOAT,
                                       ["N", ensemble.n_inputs])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", ensemble.n_classes])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, producer_name="intnet",
        doc_string=f"intnet {what}, P = {ensemble.P}: x holds {inputs} (metadata intnet.preprocessing), label the "
                   "class index (intnet.classes), scores "
                   + ("the output layer's pre-activations." if ensemble.is_single else "each class's votes."),
    )
    helper.set_model_props(model, {"intnet.classes": json.dumps(list(stored.classes)),
                                   "intnet.preprocessing": json.dumps(stored.preprocessing),
                                   "intnet.inputs": "raw" if raw_inputs else "preprocessed"})
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _scaling(preprocessor: Preprocessor, initializers: list) -> list:
    """Nodes from raw inputs ``x`` to ``x_scaled``, x · 10^decimals before rounding, with the
    preprocessing's double operations in its order, (v - low) / (high - low), clipped to [0, 1],
    times 10^decimals, so that Round (half to even, as numpy's) gives the integers intnet computes.
    A one-hot input passes as (v - 0) / 1; a constant column (high = low) is multiplied by 0."""
    from onnx import helper, numpy_helper

    low, span, varies = [], [], []
    for column in preprocessor.columns:
        if isinstance(column, NumericColumn):
            constant = column.high == column.low
            low.append(column.low)
            span.append(1.0 if constant else column.high - column.low)
            varies.append(0.0 if constant else 1.0)
        else:
            low += [0.0] * len(column.categories)
            span += [1.0] * len(column.categories)
            varies += [1.0] * len(column.categories)
    initializers += [numpy_helper.from_array(np.array(values, dtype=np.float64), name)
                     for values, name in ((low, "raw_low"), (span, "raw_span"), (varies, "raw_varies"))]
    return [
        helper.make_node("Sub", ["x", "raw_low"], ["x_shifted"]),
        helper.make_node("Div", ["x_shifted", "raw_span"], ["x_fraction"]),
        helper.make_node("Clip", ["x_fraction", "zero", "plus_one"], ["x_clipped"]),
        helper.make_node("Mul", ["x_clipped", "raw_varies"], ["x_unit"]),
        helper.make_node("Mul", ["x_unit", "input_scale"], ["x_scaled"]),
    ]


def _member_layers(network, prefix: str, nodes: list, initializers: list) -> str:
    """Append one network's layers (names prefixed by ``prefix``) reading ``a0``; the name of its
    output pre-activations."""
    from onnx import TensorProto, helper, numpy_helper

    layers = len(network.weights)
    for layer, (w, b) in enumerate(zip(network.weights, network.biases)):
        def name(kind: str, layer: int = layer) -> str:
            return f"{prefix}{kind}{layer}"

        source = "a0" if layer == 0 else f"{prefix}a{layer}"
        # int8 in the file, double in the arithmetic: stored small, cast once at load
        initializers += [numpy_helper.from_array(w.T.astype(np.int8), name("weight")),
                         numpy_helper.from_array(b.astype(np.int8), name("bias"))]
        nodes += [
            helper.make_node("Cast", [name("weight")], [name("weight_double")], to=TensorProto.DOUBLE),
            helper.make_node("Cast", [name("bias")], [name("bias_double")], to=TensorProto.DOUBLE),
            helper.make_node("MatMul", [source, name("weight_double")], [name("product")]),
        ]
        if layer == 0:  # the bias on the inputs' integer scale
            nodes.append(helper.make_node("Mul", [name("bias_double"), "input_scale"], [name("bias_scaled")]))
            nodes.append(helper.make_node("Add", [name("product"), name("bias_scaled")], [name("z")]))
        else:
            nodes.append(helper.make_node("Add", [name("product"), name("bias_double")], [name("z")]))
        if layer < layers - 1:
            nodes += [
                helper.make_node("GreaterOrEqual", [name("z"), "zero"], [name("nonnegative")]),
                helper.make_node("Where", [name("nonnegative"), "plus_one", "minus_one"], [f"{prefix}a{layer + 1}"]),
            ]
    return f"{prefix}z{layers - 1}"
