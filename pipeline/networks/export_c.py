"""A stored network as one C99 header: integer arithmetic only, nothing needed beyond <stdint.h>.

The header defines ``int intnet_predict(const int32_t *x)``, where ``x[i]`` is input i on the
file contract's integer scale, round(input · 10^decimals), so every sum is exact and a
pre-activation of exactly 0 takes the sign +1, as :class:`IntegerNetwork` computes it; and
``intnet_encode``, which makes ``x`` from a raw row's numeric values and category indices.

Each layer is stored as the matrix [W | b] (the bias is the weight of an input that is always
INTNET_INPUT_SCALE in the first layer and +1 in deeper ones), in the bits its own range needs:
a layer whose largest |parameter| is B takes b = ⌊log₂ B⌋ + 2 bits per parameter (the size intnet
counts for ``layer_bounds``), as b bit-planes of the parameters' b-bit two's complement: plane j
holds bit j, worth 2^j, and the last plane the sign bit, worth -2^(b-1). A layer in [-1, 1] thus
has the planes ``nonzero`` (bit 0) and ``negative`` (the sign), w = nonzero - 2 · negative, whatever
the file's P. Each plane packs the matrix's bits row after row with no padding (rows padded to
whole bytes made a 4-neuron and a 2-neuron layer the same size); rows of a multiple of 8 bits
(16 neurons) start at a byte and are read with whole-byte loads, others through a 5-byte window.
Hidden neurons that nothing reads are stripped first.

The first layer is stored input-major (row i holds every neuron's weight from input i), because
``intnet_predict`` visits only the non-zero inputs (most of them are zero after one-hot encoding)
and updates every neuron from one row. Deeper layers are stored neuron-major, as the file is, since
each neuron reads all of the layer before: masked XNOR-popcount on the packed signs, per plane.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np

from formulations import IntegerNetwork
from formulations.network import bits_for, strip_neurons
from pipeline.data.preprocessing import NumericColumn, Preprocessor
from pipeline.networks.ensembles import Ensemble, EnsembleKind
from pipeline.networks.inference import constraint_lines
from pipeline.networks.storage import StoredNetwork

INT32_MAX = 2**31 - 1
BYTES_PER_LINE = 16
GATHER_BLOCK = 256
"""Inputs whose non-zero indices are gathered at a time: the stack holds this many indices (1 kB),
not one per input (one per input overflowed the stack at 3,000,000 inputs)."""
COMMENT_WIDTH = 100


@dataclass(frozen=True)
class CHeader:
    text: str
    weight_bytes: int
    """Bytes of the arrays holding weights and biases (what a device's flash holds of the model)."""
    parameters: int
    """Weights and biases exported (after hidden neurons that nothing reads are stripped)."""


def export_c(stored: StoredNetwork) -> CHeader:
    """The C99 header for ``stored`` (README, "Exporting a network"): a function per member
    network, ``intnet_predict``, which votes when there is more than one, and ``intnet_encode``."""
    ensemble = stored.ensemble
    networks = [strip_neurons(network) for network in ensemble.networks]
    preprocessor = Preprocessor.from_json(stored.preprocessing)
    scale = 10**preprocessor.decimals
    layers = [_Layer(m, layer, w, b) for m, network in enumerate(networks)
              for layer, (w, b) in enumerate(zip(network.weights, network.biases))]
    columns = _Columns.of(preprocessor)
    parts = [
        _preamble(stored, networks, columns, scale),
        "\n".join(layer.definition() for layer in layers),
        _helpers(stored, preprocessor.decimals),
        _encoding(columns),
        *[code for m, network in enumerate(networks) for code in _network_code(network, layers, scale, m)],
        _predict(ensemble),
        "#endif /* INTNET_MODEL_H */\n",
    ]
    return CHeader("\n".join(parts), sum(layer.bytes for layer in layers),
                   sum(network.n_parameters for network in networks))


# --- parameter arrays --------------------------------------------------------------------------


class _Layer:
    """Layer ``layer`` of member ``member`` as stored: [W | b], transposed for the first layer, as
    bit-planes (module docstring), back to back in the array intnet_n<member>_l<layer>."""

    def __init__(self, member: int, layer: int, w: np.ndarray, b: np.ndarray):
        matrix = np.hstack([w, b[:, None]])
        self.member, self.layer = member, layer
        self.n_out, self.n_in = w.shape
        self.matrix = matrix.T if layer == 0 else matrix
        self.bound = max(1, int(np.abs(matrix).max(initial=0)))
        self.planes = bit_planes(self.matrix, bits_for(self.bound))

    @property
    def name(self) -> str:
        return f"intnet_n{self.member}_l{self.layer}"

    @property
    def row_bits(self) -> int:
        """Bits of one row of a plane: a row per input (and the bias) in the first layer, holding
        every neuron; a row per neuron in deeper ones, holding every input and the bias."""
        return self.matrix.shape[1]

    @property
    def words(self) -> int:
        """32-bit words of a row."""
        return (self.row_bits + 31) // 32

    def lanes(self, k: int) -> int:
        """Bits of the row in its word ``k``."""
        return min(32, self.row_bits - 32 * k)

    def window(self, k: int) -> int:
        """Bytes read for word ``k`` of a row: those its bits can touch. A row of a multiple of 8
        bits starts at a byte; any other may start at any bit of one, so 7 bits more."""
        return (self.lanes(k) + (0 if self.row_bits % 8 == 0 else 7) + 7) // 8

    @property
    def bits(self) -> int:
        return self.planes.shape[0]

    @property
    def plane_bytes(self) -> int:
        return self.planes.shape[1]

    @property
    def slack(self) -> int:
        """Zero bytes after the last plane, so that the last row's windows stay inside the array: a
        window reads whole bytes from the row's first, which can end one byte past the row (0 or 1).
        Reading them unconditionally was measured faster than testing for the end (Adult, 14
        neurons: 7.6 -> 10.2 M examples/s with -march=native)."""
        last_row = (self.matrix.shape[0] - 1) * self.row_bits
        reach = max((last_row + 32 * k) // 8 + self.window(k) for k in range(self.words))
        return max(0, reach - self.plane_bytes)

    @property
    def bytes(self) -> int:
        return int(self.planes.size) + self.slack

    def weight(self, plane: int) -> int:
        """What a 1 in ``plane`` adds: 2^plane, or -2^plane for the sign plane."""
        return -(1 << plane) if plane == self.bits - 1 else 1 << plane

    def read(self, plane: int, k: int | str, window: int) -> str:
        """C for word ``k`` (a number or a C variable) of the row starting at bit ``at`` of
        ``plane``, reading ``window`` bytes; bits past the row are the next row's (or 0)."""
        at = f"at + 32 * {k}" if isinstance(k, str) else _plus("at", 32 * k)
        return f"intnet_bits({_plus(self.name, plane * self.plane_bytes)}, {at}, {window})"

    def definition(self) -> str:
        orientation = "input-major, the bias row last" if self.layer == 0 else "neuron-major, each row's bias last"
        data = np.concatenate([self.planes.reshape(-1), np.zeros(self.slack, dtype=np.uint8)])
        slack = f", then {self.slack} zero byte" if self.slack else ""
        return (f"/* member {self.member}, layer {self.layer} ({self.n_in} -> {self.n_out}, {orientation}):\n"
                f" * parameters in [-{self.bound}, {self.bound}], {self.bits} bits each: {self.bits} bit-planes of "
                f"{self.plane_bytes} bytes (bit 0 of the two's\n * complement first, the sign last{slack}), each "
                f"{self.matrix.shape[0]} rows of {self.row_bits} bits one after the other */\n"
                f"static const uint8_t {self.name}[{data.size}] = {{\n{_wrapped(data, '    ')}\n}};\n")


def bit_planes(matrix: np.ndarray, bits: int) -> np.ndarray:
    """(bits, bytes) uint8: plane j holds bit j of each parameter's ``bits``-bit two's complement, the
    matrix's rows one after the other without padding. Bit k of a plane is bit k % 8 of byte k / 8
    (numpy's little bit order); the last byte's padding bits are 0."""
    planes = (matrix[None] >> np.arange(bits)[:, None, None]) & 1
    return np.packbits(planes.reshape(bits, -1).astype(bool), axis=-1, bitorder="little")


def _wrapped(values: np.ndarray, indent: str) -> str:
    words = [f"0x{v:02x}" for v in values]
    lines = [", ".join(words[at:at + BYTES_PER_LINE]) for at in range(0, len(words), BYTES_PER_LINE)]
    return ",\n".join(indent + line for line in lines)


# --- text --------------------------------------------------------------------------------------


def _comment_text(value: Any) -> str:
    """A name as a JSON string that can neither end nor open a C comment: every "*" is written
    "\\u002a" (JSON's escape for it), so no "*/" or "/*" is left (gcc's -Wcomment rejects "/*"
    inside a comment under -Werror, and "*/" would end it)."""
    return json.dumps(value).replace("*", "\\u002a")


def _c_string(text: str) -> str:
    """A C string literal holding ``text`` as UTF-8: printable ASCII as itself, every other byte
    (and '?', which could start a trigraph under -std=c99) as a three-digit octal escape."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _comment_lines(head: str, items: list[str]) -> list[str]:
    """``head`` followed by ``items`` separated by commas, wrapped into comment lines."""
    lines, line, width = [], [" *   " + head], 5 + len(head)
    for k, item in enumerate(items):
        piece = item + ("," if k < len(items) - 1 else "")
        if width + 1 + len(piece) > COMMENT_WIDTH and k:
            lines.append(" ".join(line))
            line, width = [" *    "], 6
        line.append(piece)
        width += 1 + len(piece)
    return lines + [" ".join(line)]


# --- columns and intnet_encode -----------------------------------------------------------------


@dataclass
class _NumericRun:
    """Adjacent numeric columns with one range: inputs ``first_input`` .. and numeric values
    ``first_value`` .. of intnet_encode, one per name."""

    first_input: int
    first_value: int
    low: float
    high: float
    names: list[str]


@dataclass(frozen=True)
class _Categorical:
    """Categorical column ``index`` (among categorical columns): inputs ``first_input`` .., one per
    category; its categories start at ``first_category`` in intnet_categories."""

    index: int
    name: str
    first_input: int
    categories: tuple[str, ...]
    first_category: int


@dataclass(frozen=True)
class _Columns:
    """The raw columns in input order, as runs of numeric columns and categorical columns: runs, so
    that adjacent numeric columns of one range (MNIST's pixels, mostly) take one table entry."""

    entries: tuple[_NumericRun | _Categorical, ...]

    @classmethod
    def of(cls, preprocessor: Preprocessor) -> _Columns:
        entries: list[_NumericRun | _Categorical] = []
        at = values = categoricals = categories = 0
        for column in preprocessor.columns:
            if isinstance(column, NumericColumn):
                last = entries[-1] if entries else None
                if isinstance(last, _NumericRun) and (last.low, last.high) == (column.low, column.high):
                    last.names.append(column.name)
                else:
                    entries.append(_NumericRun(at, values, column.low, column.high, [column.name]))
                at, values = at + 1, values + 1
            else:
                entries.append(_Categorical(categoricals, column.name, at, column.categories, categories))
                at, categoricals, categories = at + len(column.categories), categoricals + 1, categories + len(column.categories)
        return cls(tuple(entries))

    @property
    def runs(self) -> list[_NumericRun]:
        return [entry for entry in self.entries if isinstance(entry, _NumericRun)]

    @property
    def categoricals(self) -> list[_Categorical]:
        return [entry for entry in self.entries if isinstance(entry, _Categorical)]

    @property
    def n_numeric(self) -> int:
        return sum(len(run.names) for run in self.runs)

    @property
    def n_categories(self) -> int:
        return sum(len(column.categories) for column in self.categoricals)

    def listing(self) -> str:
        lines = []
        for entry in self.entries:
            if isinstance(entry, _NumericRun):
                n = len(entry.names)
                inputs = _span("x", entry.first_input, n)
                which = (f"numeric column {entry.first_value}" if n == 1 else
                         f"numeric columns {entry.first_value} .. {entry.first_value + n - 1}")
                lines += _comment_lines(f"{inputs}: {which}, low {entry.low!r}, high {entry.high!r}:",
                                        [_comment_text(name) for name in entry.names])
            else:
                inputs = _span("x", entry.first_input, len(entry.categories)) if entry.categories else "no input"
                lines += _comment_lines(
                    f"{inputs}: categorical column {entry.index}, {_comment_text(entry.name)}, categories "
                    f"{_span('', 0, len(entry.categories))}:",
                    [_comment_text(category) for category in entry.categories])
        return "\n".join(lines)


def _span(array: str, first: int, count: int) -> str:
    def item(k: int) -> str:
        return f"{array}[{k}]" if array else str(k)

    return item(first) if count == 1 else f"{item(first)} .. {item(first + count - 1)}"


def _encoding(columns: _Columns) -> str:
    """intnet_encode, its tables, and intnet_category when there are categories."""
    runs, categoricals = columns.runs, columns.categoricals
    parts, body = [], []
    if runs:
        rows = ",\n".join(f"    {{{run.first_input}, {run.first_value}, {len(run.names)}}}" for run in runs)
        ranges = ",\n".join(f"    {{{run.low!r}, {run.high!r}}}" for run in runs)
        parts.append(f"""/* Runs of adjacent numeric columns sharing a range: first input, first value of intnet_encode's
 * numeric[], columns; and each run's low and high. */
static const int32_t intnet_numeric_runs[{len(runs)}][3] = {{
{rows}
}};
static const double intnet_numeric_ranges[{len(runs)}][2] = {{
{ranges}
}};
""")
        body.append(f"""    for (r = 0; r < {len(runs)}; r++)
        for (j = 0; j < intnet_numeric_runs[r][2]; j++)
            x[intnet_numeric_runs[r][0] + j] = intnet_scale_numeric(numeric[intnet_numeric_runs[r][1] + j],
                                                                    intnet_numeric_ranges[r][0], intnet_numeric_ranges[r][1]);""")
    else:
        body.append("    (void)numeric; /* no numeric column */")
    if categoricals:
        rows = ",\n".join(f"    {{{c.first_input}, {len(c.categories)}, {c.first_category}}}" for c in categoricals)
        parts.append(f"""/* Categorical columns: first input, categories, first category in intnet_categories. */
static const int32_t intnet_categorical[{len(categoricals)}][3] = {{
{rows}
}};
""")
        body.append(f"""    for (r = 0; r < {len(categoricals)}; r++)
        for (j = 0; j < intnet_categorical[r][1]; j++)
            x[intnet_categorical[r][0] + j] = j == category[r] ? INTNET_INPUT_SCALE : 0;""")
    else:
        body.append("    (void)category; /* no categorical column */")
    parts.append(f"""/* x for a raw row (see the top of this file): numeric[j] is the value of numeric column j
 * (INTNET_NUMERIC_COLUMNS of them), category[j] the index of categorical column j's value among its
 * categories (INTNET_CATEGORICAL_COLUMNS of them), or -1 when it is none of them, which gives 0 for
 * all of the column's inputs. Either array may be NULL when there is no such column. */
static inline void intnet_encode(const double *numeric, const int32_t *category, int32_t *x)
{{
{"    int32_t r, j;" + chr(10) if runs or categoricals else "    (void)x; /* no column */" + chr(10)}{chr(10).join(body)}
}}
""")
    if categoricals:
        if columns.n_categories:
            names = ",\n".join("    " + _c_string(category) for c in categoricals for category in c.categories)
            parts.append(f"""static const char *const intnet_categories[{columns.n_categories}] = {{
{names}
}};

/* Whether two C strings are equal (without <string.h>, which the header does not need otherwise). */
static inline int intnet_same_text(const char *a, const char *b)
{{
    while (*a != '\\0' && *a == *b) {{
        a++;
        b++;
    }}
    return *a == *b;
}}
""")
            search = """    int32_t j;
    for (j = 0; j < intnet_categorical[column][1]; j++)
        if (intnet_same_text(intnet_categories[intnet_categorical[column][2] + j], value)) return j;
    return -1;"""
        else:
            search = """    (void)column; /* no column has a category */
    (void)value;
    return -1;"""
        parts.append(f"""/* The index of `value` (the raw value as text: integers without a decimal point, a missing value
 * "") among categorical column `column`'s categories, or -1 when it is none of them: what
 * intnet_encode takes as category[column]. */
static inline int32_t intnet_category(int32_t column, const char *value)
{{
{search}
}}
""")
    return "\n".join(parts)


# --- the header's text -------------------------------------------------------------------------


def _guarantees_text(constraints: Any) -> str:
    """The constraints the network was trained under, as its certificate states them (checked from
    its weights and recomputed on its splits when it was trained), for the header's comment."""
    if not isinstance(constraints, dict) or not constraints.get("checks"):
        return ""
    lines = []
    for line in constraint_lines(constraints):
        lines += [" * " + part for part in textwrap.wrap(_comment_text(line)[1:-1], 96)]
    return "\n" + "\n".join(lines) + "\n *"


def _preamble(stored: StoredNetwork, networks: list[IntegerNetwork], columns: _Columns, scale: int) -> str:
    ensemble = stored.ensemble
    sizes = "-".join(map(str, networks[0].sizes))
    what = (f"network {sizes}" if ensemble.is_single else
            f"{ensemble.kind} ensemble of {len(networks)} networks like {sizes}, voting")
    category_text = ("\n * intnet_category(j, text) finds that index from the value as text (integers written without a\n"
                     " * decimal point; a missing value is \"\")." if columns.categoricals else "")
    return f"""/* intnet {what}, P = {ensemble.P}, exported by `intnet export --format c`.
 *
 * Usage: int intnet_predict(const int32_t *x) returns the index of the predicted class
 * (intnet_class_name gives its label). x holds INTNET_INPUTS integers, input i on the integer scale
 * round(input * INTNET_INPUT_SCALE) of the network file, each in 0..INTNET_INPUT_SCALE. The
 * arithmetic is integer only and exact: a hidden neuron outputs +1 when its pre-activation is >= 0,
 * else -1; the class is the output neuron with the largest pre-activation, the lowest index winning
 * ties.{_vote_text(ensemble)}
 *
 * From a raw row to x: intnet_encode(numeric, category, x), numeric[j] the value of numeric column j
 * and category[j] the index of categorical column j's value among its categories (both numbered as
 * listed below), -1 for a value that is none of them.{category_text}
 * By hand, column by column in the order below:
 *   numeric column: one input, x[i] = intnet_scale_numeric(value, low, high) with the low and high
 *     listed (min-max scaling clipped to [0, 1], rounded half to even to the integer scale);
 *   categorical column: one input per category, x[i] = INTNET_INPUT_SCALE where the value, as text
 *     (integers written without a decimal point; a missing value is ""), equals that category,
 *     else 0; a value seen in no category gives 0 for all of the column's inputs.
 *
{columns.listing()}
 *{_guarantees_text(stored.provenance.get("constraints"))}
 * Parameters: each layer's weights and biases in the bits its range needs, as bit-planes (the
 * comment above each array). intnet_predict keeps on the stack {GATHER_BLOCK} input indices and each
 * layer's pre-activations, never an array as long as the inputs. Every function and array is
 * static, so the header can be included in several files.
 */
#ifndef INTNET_MODEL_H
#define INTNET_MODEL_H

#include <stdint.h>

#define INTNET_INPUTS {ensemble.n_inputs}
#define INTNET_CLASSES {ensemble.n_classes}
#define INTNET_INPUT_SCALE {scale}
#define INTNET_NUMERIC_COLUMNS {columns.n_numeric}
#define INTNET_CATEGORICAL_COLUMNS {len(columns.categoricals)}
"""


def _helpers(stored: StoredNetwork, decimals: int) -> str:
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
    t = t * {float(10**decimals)!r};
    whole = (int32_t)t;
    fraction = t - (double)whole;
    if (fraction > 0.5 || (fraction == 0.5 && (whole & 1))) whole += 1;
    return whole;
}}

/* Bits `bit` .. `bit` + 31 of the bit string at p (bit k is bit k % 8 of byte k / 8), from the
 * `bytes` bytes that hold the ones needed (a constant where it is called, so the loop unrolls into
 * loads); bits past those bytes read 0. */
static inline uint32_t intnet_bits(const uint8_t *p, int32_t bit, int bytes)
{{
    uint64_t window = 0;
    int b;
    p += bit >> 3;
    for (b = 0; b < bytes; b++) window |= (uint64_t)p[b] << (8 * b);
    return (uint32_t)(window >> (bit & 7));
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


# --- a member network --------------------------------------------------------------------------


def _network_code(network: IntegerNetwork, layers: list[_Layer], scale: int, index: int) -> list[str]:
    """``intnet_network<index>``, one network's class for x, and its first layer's step
    ``intnet_n<index>_l0_add``."""
    mine = [layer for layer in layers if layer.member == index]
    first, add = _first_layer(network, mine[0], scale)
    body = [first]
    for layer in mine[1:]:
        body.append(_activations(network, layer.layer - 1))
        body.append(_deeper_layer(layer))
    last = len(mine) - 1
    body.append(f"""    /* argmax; a later neuron wins only when strictly larger, so the lowest index wins ties */
    best = 0;
    for (o = 1; o < {network.sizes[-1]}; o++) best = z{last}[o] > z{last}[best] ? o : best;
    return (int)best;""")
    function = f"""static inline int intnet_network{index}(const int32_t *x)
{{
    int32_t start, o, best;
{chr(10).join(body)}
}}
"""
    return [f"/* Adds v times row `row` of layer 0's weights to the pre-activations z. */\n{add}\n", function]


def _first_layer(network: IntegerNetwork, layer: _Layer, scale: int) -> tuple[str, str]:
    """The first layer's code in intnet_network<m> and its add step."""
    w, b = network.weights[0], network.biases[0]
    n_out, n_in = w.shape
    # Inputs reach `scale`: the sums fit int32 for every network intnet trains (784 inputs,
    # P = 127: 1.0e9), and int64 keeps them exact beyond that.
    bound = int((np.abs(w).sum(axis=1) + np.abs(b)).max(initial=0)) * scale
    acc = "int32_t" if bound <= INT32_MAX else "int64_t"
    words = []
    for k in range(layer.words):
        lanes = layer.lanes(k)
        padded = min(32, -(-lanes // 8) * 8)
        # the lanes run to a multiple of 8 (the vectors' width), the bits past the row masked off:
        # 14 neurons measured 5.7 -> 7.6 M examples/s with -march=native against a loop of 14
        mask = "" if padded == lanes else f" & 0x{(1 << lanes) - 1:x}u"
        reads = "\n".join(f"    word[{j}] = {layer.read(j, k, layer.window(k))}{mask};" for j in range(layer.bits))
        factors = [layer.weight(j) for j in range(layer.bits)]
        if layer.bound == 1:
            # -1 is 11, so w = bit 0 - 2 * sign = (bit 0 and not sign) - sign: no doubled input
            # (measured about 5 % faster on Adult and MNIST)
            reads += "\n    word[0] &= ~word[1];"
            factors = [1, -1]
        terms = "\n                  ".join(
            f"{'+' if factor > 0 else '-'} ({_parenthesized(_times('v', abs(factor)))} "
            f"& -({acc})((word[{j}] & intnet_lane_bits[o]) != 0))" for j, factor in enumerate(factors))
        words.append(f"""{reads}
    for (o = 0; o < {padded}; o++)
        z[{_plus('o', 32 * k)}] += {terms.removeprefix('+ ')};""")
    # A word of each plane covers 32 neurons, in a lane loop with a constant count (so that -O2
    # vectorizes it: SSE2 tests 4 neurons a compare); plane j adds v * 2^j where bit j is 1 (the
    # sign plane subtracts), so inputs are shifted, never multiplied, and one pass over z does all
    # planes: two's complement needs one masked term a plane, where sign and magnitude needed two.
    add = f"""static inline void {layer.name}_add({acc} *z, int32_t row, {acc} v)
{{
    const int32_t at = {_times('row', layer.row_bits)};
    uint32_t word[{layer.bits}];
    int32_t o;
{chr(10).join(words)}
}}"""
    z_size = 32 * (layer.words - 1) + min(32, -(-layer.lanes(layer.words - 1) // 8) * 8)
    block = min(GATHER_BLOCK, n_in)
    full_end, tail = n_in - n_in % block, n_in % block
    unrolled = "\n".join(f"        nonzero[n] = {_plus('start + i', j)}; n += x[{_plus('start + i', j)}] != 0;" for j in range(8))
    # Only the non-zero inputs are visited: their indices are gathered without branches (a zero
    # input leaves n unchanged), eight a loop step. Measured (Adult, MNIST): this beats skipping
    # groups of eight zero inputs with one test, whose outcome varies from row to row, so the
    # branch mispredicts more than it saves (the gather took 45 % of Adult's time with the test).
    # Blocks of constant length keep the loops' bounds constant: a block's end computed at run time
    # measured 11.6 M examples/s on Adult (-march=native, a loaded machine) against 12.9.
    add += f"""

/* Adds the non-zero inputs among x[start] .. x[start + count - 1] to the pre-activations z: the
 * stack holds {block} indices (one per input overflowed it at 3,000,000 inputs). */
static inline void {layer.name}_block({acc} *z, const int32_t *x, int32_t start, int32_t count)
{{
    int32_t nonzero[{block}];
    int32_t i, k, n = 0;
    for (i = 0; i < count - count % 8; i += 8) {{
{unrolled}
    }}
    for (i = count - count % 8; i < count; i++) {{
        nonzero[n] = start + i;
        n += x[start + i] != 0;
    }}
    for (k = 0; k < n; k++) {layer.name}_add(z, nonzero[k], x[nonzero[k]]);
}}"""
    blocks = [f"    for (start = 0; start < {full_end}; start += {block}) {layer.name}_block(z0, x, start, {block});"]
    if tail:
        blocks.append(f"    {layer.name}_block(z0, x, {full_end}, {tail});")
    return f"""    /* layer 0, {n_in} -> {n_out}, parameters in [-{layer.bound}, {layer.bound}]: each non-zero input is added or
     * subtracted, times each power of 2 its parameter's bits hold, never multiplied */
    {acc} z0[{z_size}] = {{0}}; /* the neurons, and the last word's lanes up to a multiple of 8 */
{chr(10).join(blocks)}
    {layer.name}_add(z0, INTNET_INPUTS, INTNET_INPUT_SCALE); /* the bias row */""", add


def _times(name: str, factor: int) -> str:
    """C for ``name`` * ``factor``, without a "* 1"."""
    return f"{name} * {factor}" if factor != 1 else name


def _parenthesized(expression: str) -> str:
    return expression if expression.isidentifier() else f"({expression})"


def _plus(name: str, offset: int) -> str:
    """C for ``name`` + ``offset``, without a "+ 0"."""
    return f"{name} + {offset}" if offset else name


def _activations(network: IntegerNetwork, layer: int) -> str:
    """Hidden layer ``layer``'s signs as packed bits, 1 for -1; bit ``width`` (the next layer's bias
    input, always +1) stays 0."""
    width = network.weights[layer].shape[0]
    words = "\n".join(f"""    for (o = 0; o < {min(32, width - 32 * k)}; o++)
        h{layer}[{k}] |= (uint32_t)-(int32_t)(z{layer}[{_plus('o', 32 * k)}] < 0) & intnet_lane_bits[o];"""
                      for k in range((width + 31) // 32))
    # a mask per lane (intnet_lane_bits) rather than a shift by o: the loop vectorizes; measured
    # on Adult at -O2, 9.0 -> 9.6 M examples/s (the shift by a variable count was a serial loop)
    return f"""    uint32_t h{layer}[{(width + 1 + 31) // 32}] = {{0}};
{words}"""


def _deeper_layer(layer: _Layer) -> str:
    previous = layer.layer - 1
    full, tail = divmod(layer.row_bits, 32)

    def word(k: int | str, bits: int, window: int) -> str:
        """One word of the row: every plane's popcounts."""
        mask = "" if bits == 32 else f" & 0x{(1 << bits) - 1:x}u"
        lines = []
        for j in range(layer.bits):
            factor = layer.weight(j)
            scaled = f"{abs(factor)} * " if abs(factor) > 1 else ""
            lines.append(f"            bits = {layer.read(j, k, window)}{mask};\n"
                         f"            z{layer.layer}[o] {'+' if factor > 0 else '-'}= "
                         f"{scaled}(intnet_popcount(bits) - 2 * intnet_popcount(bits & h{previous}[{k}]));")
        return "\n".join(lines)

    loops = []
    if full:
        loops.append(f"""        for (k = 0; k < {full}; k++) {{
{word("k", 32, layer.window(0))}
        }}""")
    if tail:
        which = f"last {tail} bits" if full else f"{tail} bits"
        loops.append(f"""        {{ /* the row's {which}; the bits after them belong to the next row */
{word(full, tail, layer.window(full))}
        }}""")
    return f"""    int32_t z{layer.layer}[{layer.n_out}];
    /* layer {layer.layer}, {layer.n_in} -> {layer.n_out}, parameters in [-{layer.bound}, {layer.bound}] on signs, by popcounts
     * per plane: over the weights whose bit j is 1, the activations sum to popcount(bits) -
     * 2 * popcount(bits AND h), h holding 1 for -1; plane j weighs that by 2^j (the sign plane by
     * -2^j). The bias is the weight of a last input, always +1 (its bit of h is 0). */
    for (o = 0; o < {layer.n_out}; o++) {{
        const int32_t at = {_times('o', layer.row_bits)};
        uint32_t bits;{"" if not full else chr(10) + "        int32_t k;"}
        z{layer.layer}[o] = 0;
{chr(10).join(loops)}
    }}"""


# --- the vote ----------------------------------------------------------------------------------


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
    calls = "\n".join(f"    vote[{m}] = intnet_member_classes[{m}][intnet_network{m}(x)];" for m in range(members))
    # int32_t: class indices reach 65,536 and beyond (uint16_t wrapped them)
    return f"""/* The class member m's output o votes for. */
static const int32_t intnet_member_classes[{members}][{width}] = {{
{classes}
}};

/* The predicted class index for x (see the top of this file): every member votes, the class with
 * the most votes wins, the lowest index on a tie. The votes are counted member against member, so
 * the stack holds one entry per member, none per class. */
static inline int intnet_predict(const int32_t *x)
{{
    int32_t vote[{members}];
    int32_t m, other, count, best = 0, most = 0;
{calls}
    for (m = 0; m < {members}; m++) {{
        count = 0;
        for (other = 0; other < {members}; other++) count += vote[other] == vote[m];
        if (count > most || (count == most && vote[m] < best)) {{
            best = vote[m];
            most = count;
        }}
    }}
    return (int)best;
}}
"""
