"""Re-export of :mod:`sparsexc._safetensors` for the old import path only (the module moved to the ground floor
so the label-tree model reads its files with the same checks; sparsexc itself imports it from there)."""

from sparsexc._safetensors import (
    DTYPES,
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    ModelFormatError,
    TensorInfo,
    check_finite,
    loads_json_bounded,
    read_head,
    read_safetensors_header,
)

__all__ = [
    "DTYPES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "ModelFormatError",
    "TensorInfo",
    "check_finite",
    "loads_json_bounded",
    "read_head",
    "read_safetensors_header",
]
