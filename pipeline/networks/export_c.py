"""A stored network as one C99 header: integer arithmetic only, nothing needed beyond <stdint.h>.

The header defines ``int intnet_predict(const int32_t *x)``, where ``x[i]`` is input i on the
file contract's integer scale, round(input · 10^decimals), so every sum is exact and a
pre-activation of exactly 0 takes the sign +1, as :class:`IntegerNetwork` computes it.

Parameters are stored two ways:

* P = 1: two bit-planes, ``nonzero`` (1 where the parameter is ±1) and ``negative`` (1 where it is
  -1), so each parameter costs 2 bits. The first layer adds or subtracts inputs under those masks;
  deeper layers, whose inputs are signs, compute with masked XNOR-popcount on packed activations.
* P > 1: int8, one byte per parameter.

The first layer is stored input-major (row i holds every neuron's weight from input i), because
``intnet_predict`` visits only the non-zero inputs (most of them are zero after one-hot encoding)
and updates every neuron from one contiguous row. Deeper layers are stored neuron-major, as the
file is, since each neuron reads all of the layer before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from formulations import IntegerNetwork
from pipeline.networks.ensembles import Ensemble, EnsembleKind
from pipeline.networks.storage import StoredNetwork

INT32_MAX = 2**31 - 1
BYTES_PER_LINE = 16


@dataclass(frozen=True)
class CHeader:
    text: str
    weight_bytes: int
    """Bytes of the arrays holding weights and biases (what a device's flash holds of the model)."""


def export_c(stored: StoredNetwork) -> CHeader:
    """The C99 header for ``stored`` (README, "Exporting a network"): a function per member
    network, and ``intnet_predict``, which votes when there is more than one."""
    ensemble = stored.ensemble
    scale = 10 ** int(stored.preprocessing["decimals"])
    arrays = [array for m, network in enumerate(ensemble.networks) for array in _parameter_arrays(network, m)]
    parts = [
        _preamble(stored, scale),
        "\n".join(array.definition() for array in arrays),
        _helpers(stored),
        *[code for m, network in enumerate(ensemble.networks) for code in _network_code(network, scale, index=m)],
        _predict(ensemble),
        "#endif /* INTNET_MODEL_H */\n",
    ]
    return CHeader("\n".join(parts), sum(array.size for array in arrays))


# --- parameter arrays --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Array:
    name: str
    ctype: str
    values: np.ndarray  # 1-D or 2-D; uint8 bytes or int8 parameters

    @property
    def size(self) -> int:
        return int(self.values.size)

    def definition(self) -> str:
        shape = "".join(f"[{n}]" for n in self.values.shape)
        if self.values.ndim == 1:
            body = _wrapped(self.values, "    ")
        else:
            body = ",\n".join("    {" + _wrapped(row, "     ").strip() + "}" for row in self.values)
        return f"static const {self.ctype} {self.name}{shape} = {{\n{body}\n}};\n"


def _wrapped(values: np.ndarray, indent: str) -> str:
    words = [f"0x{v:02x}" if values.dtype == np.uint8 else str(int(v)) for v in values]
    lines = [", ".join(words[at:at + BYTES_PER_LINE]) for at in range(0, len(words), BYTES_PER_LINE)]
    return ",\n".join(indent + line for line in lines)


def bit_planes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``nonzero`` and ``negative`` planes of parameters in {-1, 0, 1}, packed along the last
    axis: bit k % 8 of byte k / 8 belongs to element k (numpy's little bit order); the padding bits of
    a row's last byte are 0, so they never contribute."""
    return (np.packbits(values != 0, axis=-1, bitorder="little"),
            np.packbits(values < 0, axis=-1, bitorder="little"))


def _parameter_arrays(network: IntegerNetwork, index: int) -> list[_Array]:
    """Member ``index``'s arrays, named intnet_n<index>_l<layer>_*."""
    arrays = []
    for layer, (w, b) in enumerate(zip(network.weights, network.biases)):
        prefix = f"intnet_n{index}_l{layer}"
        if layer == 0:
            # input-major (module docstring); the bias is the row of a last input that is always
            # INTNET_INPUT_SCALE, so it is added by the same code as any input
            rows = np.vstack([w.T, b])
            if network.P == 1:
                nonzero, negative = bit_planes(rows)
                arrays += [_Array(f"{prefix}_nonzero", "uint8_t", nonzero),
                           _Array(f"{prefix}_negative", "uint8_t", negative)]
            else:
                arrays.append(_Array(f"{prefix}_weight", "int8_t", rows.astype(np.int8)))
        elif network.P == 1:
            (w_nonzero, w_negative), (b_nonzero, b_negative) = bit_planes(w), bit_planes(b)
            arrays += [_Array(f"{prefix}_nonzero", "uint8_t", w_nonzero),
                       _Array(f"{prefix}_negative", "uint8_t", w_negative),
                       _Array(f"{prefix}_bias_nonzero", "uint8_t", b_nonzero),
                       _Array(f"{prefix}_bias_negative", "uint8_t", b_negative)]
        else:
            arrays += [_Array(f"{prefix}_weight", "int8_t", w.astype(np.int8)),
                       _Array(f"{prefix}_bias", "int8_t", b.astype(np.int8))]
    return arrays


# --- text --------------------------------------------------------------------------------------


def _comment_text(value: Any) -> str:
    """A name as a JSON string that cannot end the C comment it sits in ("\\/" is JSON for "/")."""
    return json.dumps(value).replace("*/", "*\\/")


def _c_string(text: str) -> str:
    """A C string literal holding ``text`` as UTF-8: printable ASCII as itself, every other byte
    (and '?', which could start a trigraph under -std=c99) as a three-digit octal escape."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _preamble(stored: StoredNetwork, scale: int) -> str:
    ensemble = stored.ensemble
    network = ensemble.networks[0]
    sizes = "-".join(map(str, network.sizes))
    what = (f"network {sizes}" if ensemble.is_single else
            f"{ensemble.kind} ensemble of {len(ensemble.networks)} networks like {sizes}, voting")
    storage = ("2 bits per parameter: bit-planes nonzero (1 where the parameter is +1 or -1) and negative "
               "(1 where it is -1)" if network.P == 1 else "one int8 per parameter")
    return f"""/* intnet {what}, P = {network.P}, exported by `intnet export --format c`.
 *
 * Usage: int intnet_predict(const int32_t *x) returns the index of the predicted class
 * (intnet_class_name gives its label). x holds INTNET_INPUTS integers, input i on the integer scale
 * round(input * INTNET_INPUT_SCALE) of the network file, each in 0..INTNET_INPUT_SCALE. The
 * arithmetic is integer only and exact: a hidden neuron outputs +1 when its pre-activation is >= 0,
 * else -1; the class is the output neuron with the largest pre-activation, the lowest index winning
 * ties.{_vote_text(ensemble)} Parameters: {storage}.
 *
 * From a raw row to x, column by column in the order below:
 *   numeric column: one input, x[i] = intnet_scale_numeric(value, low, high) with the low and high
 *     listed (min-max scaling clipped to [0, 1], rounded half to even to the integer scale);
 *   categorical column: one input per category, x[i] = INTNET_INPUT_SCALE where the value, as text
 *     (integers written without a decimal point; a missing value is ""), equals that category,
 *     else 0; a value seen in no category gives 0 for all of the column's inputs.
 *
{_input_table(stored.preprocessing, scale)}
 *
 * Every function and array is static, so the header can be included in several files.
 */
#ifndef INTNET_MODEL_H
#define INTNET_MODEL_H

#include <stdint.h>

#define INTNET_INPUTS {network.sizes[0]}
#define INTNET_CLASSES {ensemble.n_classes}
#define INTNET_INPUT_SCALE {scale}
"""


def _input_table(preprocessing: dict[str, Any], scale: int) -> str:
    lines, at = [], 0
    for column in preprocessing["columns"]:
        name = _comment_text(column["name"])
        if column["kind"] == "numeric":
            lines.append(f" *   x[{at}] = intnet_scale_numeric(value of {name}, {float(column['low'])!r}, {float(column['high'])!r})")
            at += 1
        else:
            for category in column["categories"]:
                lines.append(f" *   x[{at}] = {scale} if {name} is {_comment_text(category)}, else 0")
                at += 1
    return "\n".join(lines)


def _helpers(stored: StoredNetwork) -> str:
    names = ", ".join(_c_string(label) for label in stored.classes)
    return f"""static const char *const intnet_class_names[INTNET_CLASSES] = {{{names}}};

/* The label of class index c (0 <= c < INTNET_CLASSES), as the network file names it. */
static inline const char *intnet_class_name(int c) {{ return intnet_class_names[c]; }}

/* A numeric column's input: (value - low) / (high - low), clipped to [0, 1], times
 * INTNET_INPUT_SCALE, rounded half to even; 0 when high == low. The same double operations, in the
 * same order, as intnet's preprocessing, so the result is the integer intnet computes. */
static inline int32_t intnet_scale_numeric(double value, double low, double high)
{{
    double t, fraction;
    int32_t whole;
    if (high == low) return 0;
    t = (value - low) / (high - low);
    if (t < 0.0) t = 0.0;
    if (t > 1.0) t = 1.0;
    t = t * {float(10 ** int(stored.preprocessing["decimals"]))!r};
    whole = (int32_t)t;
    fraction = t - (double)whole;
    if (fraction > 0.5 || (fraction == 0.5 && (whole & 1))) whole += 1;
    return whole;
}}

/* Bit k of a packed row of bits: bit k % 8 of byte k / 8. */
static inline int32_t intnet_bit(const uint8_t *row, int k) {{ return (row[k >> 3] >> (k & 7)) & 1; }}

/* Bits 32k .. 32k + 31 of a packed row of `bytes` bytes, as one word. */
static inline uint32_t intnet_word(const uint8_t *row, int k, int bytes)
{{
    uint32_t word = 0;
    int b;
    for (b = 0; b < 4 && 4 * k + b < bytes; b++) word |= (uint32_t)row[4 * k + b] << (8 * b);
    return word;
}}

/* Set bits of a word, without compiler built-ins. */
static inline int32_t intnet_popcount(uint32_t v)
{{
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    return (int32_t)((((v + (v >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24);
}}

/* Bit o of a word, one entry per o: a loop over neurons that tests `word & intnet_lane_bits[o]`
 * compiles to vector compares (the lanes of one vector test different bits), where `word >> o`
 * would need per-lane shifts that x86-64's baseline SSE2 lacks. A 128-byte constant, not a weight. */
static const uint32_t intnet_lane_bits[32] = {{
    0x1u, 0x2u, 0x4u, 0x8u, 0x10u, 0x20u, 0x40u, 0x80u,
    0x100u, 0x200u, 0x400u, 0x800u, 0x1000u, 0x2000u, 0x4000u, 0x8000u,
    0x10000u, 0x20000u, 0x40000u, 0x80000u, 0x100000u, 0x200000u, 0x400000u, 0x800000u,
    0x1000000u, 0x2000000u, 0x4000000u, 0x8000000u, 0x10000000u, 0x20000000u, 0x40000000u, 0x80000000u}};
"""


def _network_code(network: IntegerNetwork, scale: int, index: int) -> list[str]:
    """``intnet_network<index>``, one network's class for x, and its first layer's step
    ``intnet_n<index>_l0_add``. Its arrays are named intnet_n<index>_*."""
    layers = len(network.weights)
    first, add = _first_layer(network, scale, index)
    body = [first]
    for layer in range(1, layers):
        body.append(_activations(network, layer - 1))
        body.append(_deeper_layer(network, layer, index))
    last = layers - 1
    body.append(f"""    /* argmax; a later neuron wins only when strictly larger, so the lowest index wins ties */
    best = 0;
    for (o = 1; o < {network.sizes[-1]}; o++) best = z{last}[o] > z{last}[best] ? o : best;
    return best;""")
    return [f"/* Adds v times row `row` of layer 0's weights to the pre-activations z. */\n{add}\n", f"""static inline int intnet_network{index}(const int32_t *x)
{{
    int n = 0, i, o, k, best;
{chr(10).join(body)}
}}
"""]


def _first_layer(network: IntegerNetwork, scale: int, index: int) -> tuple[str, str]:
    """The first layer's code in intnet_network<index> and its add step."""
    w, b = network.weights[0], network.biases[0]
    n_out, n_in = w.shape
    # Inputs reach `scale`: the sums fit int32 for every network intnet trains (784 inputs,
    # P = 127: 1.0e9), and int64 keeps them exact beyond that.
    bound = int((np.abs(w).sum(axis=1) + np.abs(b)).max(initial=0)) * scale
    acc = "int32_t" if bound <= INT32_MAX else "int64_t"
    prefix = f"intnet_n{index}_l0"
    if network.P == 1:
        what = "weights in {-1, 0, 1}: each non-zero input is added or subtracted, never multiplied"
        row_bytes = (n_out + 7) // 8
        # a word of each bit-plane row covers 32 neurons, in a lane loop with a constant count (so
        # that -O2 vectorizes it: SSE2 tests 4 neurons a compare); measured no faster than the loop
        # per byte it replaced, but simpler
        words = "\n".join(f"""    negative = intnet_word({prefix}_negative[row], {k}, {row_bytes});
    plus = intnet_word({prefix}_nonzero[row], {k}, {row_bytes}) & ~negative;
    for (o = 0; o < {min(32, 8 * row_bytes - 32 * k)}; o++)
        z[{_plus('o', 32 * k)}] += (v & -({acc})((plus & intnet_lane_bits[o]) != 0))
                  - (v & -({acc})((negative & intnet_lane_bits[o]) != 0));""" for k in range((n_out + 31) // 32))
        add = f"""static inline void intnet_n{index}_l0_add({acc} *z, int row, {acc} v)
{{
    uint32_t plus, negative;
    int o;
{words}
}}"""
        padded = 8 * row_bytes  # the add step writes whole bytes of neurons
    else:
        what = "int8 weights"
        add = f"""static inline void intnet_n{index}_l0_add({acc} *z, int row, {acc} v)
{{
    const int8_t *w = {prefix}_weight[row];
    int o;
    for (o = 0; o < {n_out}; o++) z[o] += v * w[o];
}}"""
        padded = n_out
    groups = n_in - n_in % 8
    unrolled = "\n".join(f"        nonzero[n] = {_plus('i', j)}; n += x[{_plus('i', j)}] != 0;" for j in range(8))
    return f"""    /* layer 0, {n_in} -> {n_out}, {what}.
     * Only the non-zero inputs are visited: their indices are gathered without branches (a zero
     * input leaves n unchanged), eight a loop step. Measured (Adult, MNIST): this beats skipping
     * groups of eight zero inputs with one test, whose outcome varies from row to row, so the
     * branch mispredicts more than it saves (the gather took 45 % of Adult's time with the test). */
    {acc} z0[{padded}] = {{0}};
    int nonzero[INTNET_INPUTS];
    for (i = 0; i < {groups}; i += 8) {{
{unrolled}
    }}
    for (; i < INTNET_INPUTS; i++) {{
        nonzero[n] = i;
        n += x[i] != 0;
    }}
    intnet_n{index}_l0_add(z0, INTNET_INPUTS, INTNET_INPUT_SCALE); /* the bias row */
    for (k = 0; k < n; k++) intnet_n{index}_l0_add(z0, nonzero[k], x[nonzero[k]]);""", add


def _plus(name: str, offset: int) -> str:
    """C for ``name`` + ``offset``, without a "+ 0"."""
    return f"{name} + {offset}" if offset else name


def _activations(network: IntegerNetwork, layer: int) -> str:
    """Hidden layer ``layer``'s signs: packed bits (1 for -1) for P = 1, else ±1 integers."""
    width = network.weights[layer].shape[0]
    if network.P == 1:
        words = "\n".join(f"""    for (o = 0; o < {min(32, width - 32 * k)}; o++)
        h{layer}[{k}] |= (uint32_t)-(int32_t)(z{layer}[{_plus('o', 32 * k)}] < 0) & intnet_lane_bits[o];"""
                          for k in range((width + 31) // 32))
        # a mask per lane (intnet_lane_bits) rather than a shift by o: the loop vectorizes; measured
        # on Adult at -O2, 9.0 -> 9.6 M examples/s (the shift by a variable count was a serial loop)
        return f"""    uint32_t h{layer}[{(width + 31) // 32}] = {{0}};
{words}"""
    return f"""    int32_t h{layer}[{width}];
    for (o = 0; o < {width}; o++) h{layer}[o] = z{layer}[o] < 0 ? -1 : 1;"""


def _deeper_layer(network: IntegerNetwork, layer: int, index: int) -> str:
    n_out, n_in = network.weights[layer].shape
    prefix = f"intnet_n{index}_l{layer}"
    previous = layer - 1
    if network.P == 1:
        row_bytes = (n_in + 7) // 8
        return f"""    int32_t z{layer}[{n_out}];
    /* layer {layer}, {n_in} -> {n_out}, weights in {{-1, 0, 1}} on signs, by masked XNOR-popcount: a
     * product is +1 where the weight's sign bit equals the activation's, so over the non-zero
     * weights the sum is popcount(nonzero) - 2 * popcount((negative XOR h) AND nonzero). */
    for (o = 0; o < {n_out}; o++) {{
        z{layer}[o] = intnet_bit({prefix}_bias_nonzero, o) - 2 * intnet_bit({prefix}_bias_negative, o);
        for (k = 0; k < {(n_in + 31) // 32}; k++) {{
            const uint32_t nonzero = intnet_word({prefix}_nonzero[o], k, {row_bytes});
            const uint32_t differ = (intnet_word({prefix}_negative[o], k, {row_bytes}) ^ h{previous}[k]) & nonzero;
            z{layer}[o] += intnet_popcount(nonzero) - 2 * intnet_popcount(differ);
        }}
    }}"""
    return f"""    int32_t z{layer}[{n_out}];
    /* layer {layer}, {n_in} -> {n_out}, int8 weights on signs */
    for (o = 0; o < {n_out}; o++) {{
        z{layer}[o] = {prefix}_bias[o];
        for (i = 0; i < {n_in}; i++) z{layer}[o] += {prefix}_weight[o][i] * h{previous}[i];
    }}"""


def _vote_text(ensemble: Ensemble) -> str:
    if ensemble.is_single:
        return ""
    rule = ("member m's output 0 votes for class pair[m][0], output 1 for pair[m][1]"
            if ensemble.kind == EnsembleKind.ONE_VS_ONE else "each member votes for the class it predicts")
    return (f"\n * An ensemble of {len(ensemble.networks)} networks: {rule}; the class with the most votes "
            "wins,\n * the lowest index on a tie.")


def _predict(ensemble: Ensemble) -> str:
    if ensemble.is_single:
        return """/* The predicted class index for x (see the top of this file). */
static inline int intnet_predict(const int32_t *x) { return intnet_network0(x); }
"""
    members = len(ensemble.networks)
    classes = ",\n".join("    {" + ", ".join(map(str, c)) + "}" for c in ensemble.member_classes)
    width = len(ensemble.member_classes[0])
    calls = "\n".join(f"    votes[intnet_member_classes[{m}][intnet_network{m}(x)]]++;" for m in range(members))
    return f"""/* The class member m's output o votes for. */
static const uint16_t intnet_member_classes[{members}][{width}] = {{
{classes}
}};

/* The predicted class index for x (see the top of this file): every member votes, the class with
 * the most votes wins, the lowest index on a tie. */
static inline int intnet_predict(const int32_t *x)
{{
    int votes[INTNET_CLASSES] = {{0}};
    int c, best = 0;
{calls}
    for (c = 1; c < INTNET_CLASSES; c++) best = votes[c] > votes[best] ? c : best;
    return best;
}}
"""
