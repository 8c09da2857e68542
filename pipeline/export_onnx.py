"""A stored network as an ONNX model of standard operators (opset 17).

Input ``x``: float32 [N, in_features], preprocessed inputs in [0, 1]; output ``label``: int64 [N],
the class index. float32 cannot hold 0.1234 exactly, and a float32 sum of such inputs times
integer weights can land on the wrong side of 0, so the graph computes as the file contract does:
it rounds x · 10^decimals to the integer grid and runs every layer in float64, where these integer
sums (below 2^53) are exact. Hidden neurons output +1 where the pre-activation is >= 0 (so 0 gives
+1) and ArgMax takes the first maximum (the lowest index wins ties).
"""

from __future__ import annotations

import json

import numpy as np

from pipeline.storage import StoredNetwork

OPSET = 17
IR_VERSION = 8
"""The IR version that came with opset 17, so that runtimes from then on load the model."""


def export_onnx(stored: StoredNetwork) -> bytes:
    """The serialised ONNX model for ``stored`` (README, "Exporting a network")."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    network = stored.network
    scale = float(10 ** int(stored.preprocessing["decimals"]))
    initializers = [
        numpy_helper.from_array(np.array(scale), "input_scale"),
        numpy_helper.from_array(np.array(0.0), "zero"),
        numpy_helper.from_array(np.array(1.0), "plus_one"),
        numpy_helper.from_array(np.array(-1.0), "minus_one"),
    ]
    nodes = [
        helper.make_node("Cast", ["x"], ["x_double"], to=TensorProto.DOUBLE),
        helper.make_node("Mul", ["x_double", "input_scale"], ["x_scaled"]),
        helper.make_node("Round", ["x_scaled"], ["a0"]),  # the contract's integer inputs
    ]
    for layer, (w, b) in enumerate(zip(network.weights, network.biases)):
        # int8 in the file, double in the arithmetic: stored small, cast once at load
        initializers += [numpy_helper.from_array(w.T.astype(np.int8), f"weight{layer}"),
                         numpy_helper.from_array(b.astype(np.int8), f"bias{layer}")]
        nodes += [
            helper.make_node("Cast", [f"weight{layer}"], [f"weight{layer}_double"], to=TensorProto.DOUBLE),
            helper.make_node("Cast", [f"bias{layer}"], [f"bias{layer}_double"], to=TensorProto.DOUBLE),
            helper.make_node("MatMul", [f"a{layer}", f"weight{layer}_double"], [f"product{layer}"]),
        ]
        if layer == 0:  # the bias on the inputs' integer scale
            nodes.append(helper.make_node("Mul", ["bias0_double", "input_scale"], ["bias0_scaled"]))
            nodes.append(helper.make_node("Add", ["product0", "bias0_scaled"], ["z0"]))
        else:
            nodes.append(helper.make_node("Add", [f"product{layer}", f"bias{layer}_double"], [f"z{layer}"]))
        if layer < len(network.weights) - 1:
            nodes += [
                helper.make_node("GreaterOrEqual", [f"z{layer}", "zero"], [f"nonnegative{layer}"]),
                helper.make_node("Where", [f"nonnegative{layer}", "plus_one", "minus_one"], [f"a{layer + 1}"]),
            ]
    last = len(network.weights) - 1
    nodes.append(helper.make_node("ArgMax", [f"z{last}"], ["label"], axis=1, keepdims=0, select_last_index=0))
    graph = helper.make_graph(
        nodes, "intnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", network.sizes[0]])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, producer_name="intnet",
        doc_string=f"intnet network {'-'.join(map(str, network.sizes))}, P = {network.P}: x holds preprocessed "
                   "inputs in [0, 1] (metadata intnet.preprocessing), label the class index (intnet.classes).",
    )
    helper.set_model_props(model, {"intnet.classes": json.dumps(list(stored.classes)),
                                   "intnet.preprocessing": json.dumps(stored.preprocessing)})
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()
