"""Constants of the ``.bnn`` file format, version 1 (the specification is docs/format.md).

Every code here is written to files: a code, once assigned, is never reused or changed.
The C++ mirror is ``csrc/include/bnnkit/format.h``; the two must agree.
"""

from __future__ import annotations

import numpy as np

MAGIC = b"\x89BNN\r\n\x1a\n"
FORMAT_VERSION = 1
HEADER_SIZE = 56
ALIGNMENT = 64
BIT_CONVENTION = "bnnkit.bits.v1"

# Limits (docs/format.md sections 2, 3 and 5).
MAX_METADATA = 65536
MAX_TENSORS = 1 << 20
MAX_NODES = 1 << 20
MAX_GRAPH_IO = 1024
MAX_STRING = 65535
MAX_ARRAY = 65536
MAX_ATTRS = 256
MAX_NDIM = 6
MAX_DIM = (1 << 31) - 1
MAX_ELEMENTS = 1 << 31
FLAG_CONSTANT = 1

# dtype name -> code; bytes per element (None for bits, whose size depends on the shape).
DTYPES = {"f32": 1, "f16": 2, "i8": 3, "i32": 4, "u8": 5, "bits": 6}
DTYPE_NAMES = {code: name for name, code in DTYPES.items()}
NUMPY_DTYPES = {"f32": "<f4", "f16": "<f2", "i8": "i1", "i32": "<i4", "u8": "u1", "bits": "<u4"}

# Value (metadata and attribute) types.
VALUE_TYPES = {"int": 1, "float": 2, "string": 3, "ints": 4, "floats": 5, "strings": 6}
VALUE_TYPE_NAMES = {code: name for name, code in VALUE_TYPES.items()}

REQUIRED_METADATA = {"bnnkit.bit_convention": "string", "bnnkit.producer": "string"}

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def channel_axis(ndim: int) -> int:
    """The packed axis of a ``bits`` tensor: 1 for rank >= 2, else 0."""
    return 1 if ndim >= 2 else 0


def storage_shape(dtype: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the stored array: the logical shape, or for ``bits`` channels-last words."""
    if dtype != "bits":
        return tuple(shape)
    axis = channel_axis(len(shape))
    rest = tuple(d for i, d in enumerate(shape) if i != axis)
    return rest + ((shape[axis] + 31) // 32,)


def storage_nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    """Bytes a constant of this dtype and logical shape occupies (docs/format.md table 5)."""
    itemsize = np.dtype(NUMPY_DTYPES[dtype]).itemsize
    return itemsize * int(np.prod(storage_shape(dtype, shape), dtype=object))
