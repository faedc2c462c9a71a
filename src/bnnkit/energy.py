"""A small, parameterised inference-energy model for (binary) neural networks.

The estimate has three parts, each a sum over the layers that ``bnnkit.analysis.summary``
profiles:

* **compute**: every multiply-accumulate (MAC) with ``w``-bit weights and ``a``-bit inputs.
  When both operands are quantized to at most 8 bits, a MAC costs
  ``(w * a / 64) * (E_mult8 + E_add8)``: Horowitz's 8-bit integer multiply-add scaled by
  the number of one-bit adder cells, i.e. proportionally to the PokeBNN ACE
  (arXiv 2112.00133 proposes ACE = w * a per MAC as a hardware-agnostic proxy for the
  energy of the arithmetic), so a binary (XNOR-popcount) MAC costs 1/64 of an int8
  MAC. A MAC with an operand wider than 8 bits (an unquantized layer, or 16/32-bit fake
  quantization) costs one floating-point multiply plus one add in ``float_format``.
* **weights**: every stored weight bit (the summary's model size, binary weights packed)
  is fetched once per inference from DRAM, ``E_DRAM`` per 64-bit access.
* **activations**: every conv/dense layer reads its input once at its input precision
  (1 bit for binary inputs, 32 bits for unquantized ones) and writes its output once at
  32 bits, each 64-bit word through an on-chip SRAM at ``E_SRAM`` per access.

So ``E = sum_l MACs_l * E_MAC(w_l, a_l) + bits_W / 64 * E_DRAM
+ sum_l (N_in,l * a_l + 32 * N_out,l) / 64 * E_SRAM``, for batch 1.

Sources of the constants (all 45 nm, 0.9 V): M. Horowitz, "Computing's energy problem
(and what we can do about it)", ISSCC 2014, Fig. 1.1.9 — integer add 8/32 bit 0.03/0.1 pJ,
integer multiply 8/32 bit 0.2/3.1 pJ, float add 16/32 bit 0.4/0.9 pJ, float multiply
16/32 bit 1.1/3.7 pJ; 64-bit memory access: 8 KB SRAM 10 pJ, 32 KB SRAM 20 pJ, 1 MB SRAM
100 pJ, DRAM 1.3-2.6 nJ (we use the low end, 1300 pJ). The model itself (one DRAM fetch
per weight, one SRAM read/write per activation, ACE-proportional low-bit MACs) is our
simplification; every constant is a field of :class:`EnergyTable`, so another technology
node is one ``dataclasses.replace`` away.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# Horowitz, ISSCC 2014, 45 nm, picojoules.
HOROWITZ_SOURCE = "M. Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm"
_FLOAT_FORMATS = ("fp32", "fp16")


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation and per 64-bit memory access, in picojoules (pJ)."""

    name: str = "horowitz45nm"
    int8_add_pj: float = 0.03
    int8_mult_pj: float = 0.2
    fp16_add_pj: float = 0.4
    fp16_mult_pj: float = 1.1
    fp32_add_pj: float = 0.9
    fp32_mult_pj: float = 3.7
    sram_pj_per_64b: float = 100.0  # 1 MB SRAM
    dram_pj_per_64b: float = 1300.0  # DRAM, low end of 1.3-2.6 nJ
    float_format: str = "fp32"  # cost model of MACs with an operand wider than 8 bits
    source: str = HOROWITZ_SOURCE

    def __post_init__(self):
        if self.float_format not in _FLOAT_FORMATS:
            raise ValueError(f"float_format must be one of {_FLOAT_FORMATS}, got {self.float_format!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_pj") or f.name.endswith("_64b"):
                if not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"energy constant {f.name} must be a number >= 0, got {value!r}")

    def mac_pj(self, weight_bits: int, input_bits: int) -> float:
        """Energy of one MAC: ACE-scaled int8 multiply-add if both operands have <= 8 bits,
        else one float multiply + add in ``float_format``."""
        if weight_bits <= 8 and input_bits <= 8:
            return weight_bits * input_bits / 64.0 * (self.int8_mult_pj + self.int8_add_pj)
        if self.float_format == "fp16":
            return self.fp16_mult_pj + self.fp16_add_pj
        return self.fp32_mult_pj + self.fp32_add_pj


HOROWITZ_45NM = EnergyTable()


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy of one inference (batch 1) in picojoules, split by where it is spent."""

    compute_pj: float
    weights_pj: float
    activations_pj: float
    table: str
    source: str = ""  # where the table's constants come from (``EnergyTable.source``)

    @property
    def total_pj(self) -> float:
        return self.compute_pj + self.weights_pj + self.activations_pj

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "total_pj": self.total_pj}


def compute_pj(macs: dict[tuple[int, int], int], table: EnergyTable) -> float:
    """sum over (weight bits, input bits) of MACs * ``table.mac_pj(w, a)``."""
    return sum(n * table.mac_pj(w, a) for (w, a), n in macs.items())


def memory_pj(bits: float, pj_per_64b: float) -> float:
    """Energy of moving ``bits`` in 64-bit accesses: ``bits / 64 * pj_per_64b``."""
    return bits / 64.0 * pj_per_64b


def estimate(macs, weight_bits: int, activation_bits: int, table: EnergyTable = HOROWITZ_45NM) -> EnergyEstimate:
    """Combine MACs by (weight bits, input bits), stored weight bits and activation traffic
    bits (see the module docstring) into an :class:`EnergyEstimate`."""
    return EnergyEstimate(
        compute_pj=compute_pj(macs, table),
        weights_pj=memory_pj(weight_bits, table.dram_pj_per_64b),
        activations_pj=memory_pj(activation_bits, table.sram_pj_per_64b),
        table=table.name,
        source=table.source,
    )
