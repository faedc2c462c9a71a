"""The ``.bnn`` model file: spec constants and a pure-numpy writer and reader.

The format is specified in docs/format.md; the C++ loader (csrc/runtime/loader.cc)
implements the same validation. No torch here: deploying needs only numpy.
"""

from bnnkit.format.builder import Builder
from bnnkit.format.model import FormatError, ModelFile, Node, Tensor
from bnnkit.format.ops import OPS, OpSpec
from bnnkit.format.reader import read
from bnnkit.format.spec import BIT_CONVENTION, DTYPES, FORMAT_VERSION, MAGIC, VALUE_TYPES
from bnnkit.format.writer import write

__all__ = ["BIT_CONVENTION", "Builder", "DTYPES", "FORMAT_VERSION", "FormatError", "MAGIC", "ModelFile",
           "Node", "OPS", "OpSpec", "Tensor", "VALUE_TYPES", "read", "write"]
