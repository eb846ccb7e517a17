"""Reading a checkpoint's tensor table without reading its tensors: safetensors headers and `.ckpt` files.

A safetensors file is an 8-byte little-endian header length, a JSON object `{name: {"dtype", "shape",
"data_offsets"}, "__metadata__": {str: str}}`, then the raw bytes. Everything the architecture detection needs
(names, dtypes, shapes) is in the header, so a browser can send the header alone and a 7 GB file is read in
microseconds. Every check here is strict, and every failure is a `CheckpointError` that names the offending
field (the tensor name for a bad entry) and says why.

A `.ckpt` / `.pt` is a pickle; it is opened only with `torch.load(weights_only=True)` onto the meta device
(memory-mapped where the file allows), so no arbitrary Python object is ever built and no tensor data is read.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# safetensors' own reader refuses headers over 100 MB; so do we (a real SDXL header is about 200 kB).
MAX_HEADER_BYTES = 100_000_000

# Bits per element of every dtype the safetensors format names.
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "I64": 64,
    "U64": 64,
    "F64": 64,
}

METADATA_KEY = "__metadata__"


class CheckpointError(ValueError):
    """A file or header that cannot be read as a UNet checkpoint. `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the table: what the architecture detection needs, and its size on disk."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return (self.numel * DTYPE_BITS[self.dtype] + 7) // 8


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_header(header: Any) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Check a decoded header and return (tensors by name, metadata). data_offsets are optional here."""
    if not isinstance(header, dict):
        raise CheckpointError("header", f"must be a JSON object of tensor entries, got {_json_type(header)}")
    metadata = header.get(METADATA_KEY, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(METADATA_KEY, "must be an object of string values")
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name == METADATA_KEY:
            continue
        if not isinstance(entry, dict):
            raise CheckpointError(name, f"must be an object with dtype and shape, got {_json_type(entry)}")
        for required in ("dtype", "shape"):
            if required not in entry:
                raise CheckpointError(f"{name}.{required}", "is missing")
        dtype, shape = entry["dtype"], entry["shape"]
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            raise CheckpointError(f"{name}.dtype", f"unknown dtype {dtype!r}; known: {sorted(DTYPE_BITS)}")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise CheckpointError(f"{name}.shape", f"must be a list of non-negative integers, got {shape!r}")
        info = TensorInfo(dtype, tuple(shape))
        if "data_offsets" in entry:
            offsets = entry["data_offsets"]
            if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
                raise CheckpointError(f"{name}.data_offsets", f"must be [begin, end] byte offsets, got {offsets!r}")
            if offsets[1] - offsets[0] != info.nbytes:
                raise CheckpointError(
                    f"{name}.data_offsets",
                    f"{offsets} spans {offsets[1] - offsets[0]} bytes, but {dtype} {list(shape)} takes {info.nbytes}",
                )
        tensors[name] = info
    _check_layout(header)
    return tensors, dict(metadata)


def _check_layout(header: dict[str, Any], data_bytes: int | None = None) -> None:
    """The format's rule for data_offsets: given for every tensor or for none, and, in order of their starts,
    the tensors tile the data exactly, from byte 0 with no gap and no overlap (to its last byte when the
    data's size is known)."""
    entries = [(name, e.get("data_offsets")) for name, e in header.items() if name != METADATA_KEY]
    given = [(o[0], o[1], name) for name, o in entries if o is not None]
    if not given:
        return
    if len(given) != len(entries):
        name = next(n for n, o in entries if o is None)
        raise CheckpointError(f"{name}.data_offsets", "is missing while other tensors have theirs")
    end, last = 0, ""
    for begin, stop, name in sorted(given):
        if begin != end:
            what = "overlaps the tensor before it" if begin < end else f"leaves a gap of {begin - end} bytes"
            raise CheckpointError(f"{name}.data_offsets", f"starts at byte {begin}: it {what} (which ends at {end})")
        end, last = stop, name
    if data_bytes is not None and end > data_bytes:
        raise CheckpointError(
            f"{last}.data_offsets",
            f"ends at byte {end} of the data, but the file holds {data_bytes}: the file is truncated",
        )
    if data_bytes is not None and end < data_bytes:
        raise CheckpointError(
            "data_offsets", f"the tensors end at byte {end}, but the file holds {data_bytes} bytes of data after them"
        )


def decode_header_json(raw: bytes, field: str = "header") -> Any:
    """JSON text -> Python value; bad UTF-8, bad JSON and absurd nesting are CheckpointErrors."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(field, f"is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(field, f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise CheckpointError(field, "is not a safetensors header: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise CheckpointError(field, f"is not valid JSON: {exc}") from None
    # A lone surrogate (the escape \ud800 with no partner) is valid JSON but no character: no real header holds
    # one (safetensors writes Rust strings), and one in a name could be neither encoded nor quoted back. The scan
    # of the text is cheap; the walk runs only when the text holds such an escape at all.
    if _SURROGATE_ESCAPE.search(text) and (where := lone_surrogate_at(value)) is not None:
        raise CheckpointError(where, "holds a lone surrogate (\\ud800-\\udfff), which is not a character")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def printable(text: str) -> str:
    """`text` as it can be written in UTF-8: a lone surrogate becomes its escape (\\ud800)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """Where in a parsed JSON value (a dotted path of keys, printable) a key or string holds a lone surrogate."""
    if isinstance(value, str):
        return (path or "body") if printable(value) is not value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and printable(key) is not key:
            return printable(here)
        if (found := lone_surrogate_at(inner, here)) is not None:
            return printable(found)
    return None


def parse_safetensors_header(data: bytes, *, file_size: int | None = None) -> dict[str, Any]:
    """The decoded header of safetensors bytes (the whole file, or at least its first 8 + length bytes).

    With `file_size`, the tensors' data_offsets are also checked to lie inside the file.
    """
    if len(data) < 8:
        raise CheckpointError("header_length", f"a safetensors file starts with 8 length bytes, got {len(data)} bytes")
    length = int.from_bytes(data[:8], "little")
    if length < 2 or length > MAX_HEADER_BYTES:
        raise CheckpointError(
            "header_length",
            f"{length} bytes is not a plausible header length (2 to {MAX_HEADER_BYTES}): not a safetensors file",
        )
    if len(data) < 8 + length:
        raise CheckpointError(
            "header_length", f"says {length} header bytes, but only {len(data) - 8} follow: the file is truncated"
        )
    header = decode_header_json(data[8 : 8 + length])
    validate_header(header)
    if file_size is not None:
        for name, entry in header.items():
            if name != METADATA_KEY and entry.get("data_offsets") is None:
                raise CheckpointError(f"{name}.data_offsets", "is missing (a safetensors file needs it)")
        _check_layout(header, max(file_size - 8 - length, 0))
    return header


def read_safetensors_header(path: str | Path) -> dict[str, Any]:
    """The decoded header of a safetensors file, reading only the header's bytes."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) == 8:
            length = int.from_bytes(head, "little")
            if 2 <= length <= MAX_HEADER_BYTES:
                head += f.read(length)
    return parse_safetensors_header(head, file_size=size)


# torch dtype name -> safetensors dtype name, for headers built from a .ckpt.
_TORCH_DTYPES = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e8m0fnu": "F8_E8M0",
    "int16": "I16",
    "uint16": "U16",
    "float16": "F16",
    "bfloat16": "BF16",
    "int32": "I32",
    "uint32": "U32",
    "float32": "F32",
    "complex64": "C64",
    "int64": "I64",
    "uint64": "U64",
    "float64": "F64",
}


def read_torch_checkpoint(path: str | Path) -> dict[str, Any]:
    """A safetensors-style header built from a `.ckpt` / `.pt` file's tensors (shapes and dtypes only).

    `torch.load(weights_only=True)` refuses any object but tensors, containers and numbers; the tensors land on
    the meta device, so nothing but the pickle itself is read. The `state_dict` entry is taken when present
    (Lightning checkpoints); nested dicts of tensors are flattened with dots.
    """
    import pickle

    import torch

    path = Path(path)
    try:
        try:
            obj = torch.load(path, map_location="meta", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) or not _starts_like_pickle(path):
                raise
            # The legacy (pre-zip) format cannot be memory-mapped; weights_only still guards the unpickling.
            obj = torch.load(path, map_location="meta", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            "file",
            "holds Python objects other than tensors, which are never unpickled here "
            f"(torch.load weights_only=True refused it: {first[:200]}); save the state dict as safetensors",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError("file", f"is not a readable torch checkpoint: {str(exc).splitlines()[0][:200]}") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError("file", f"holds a {type(obj).__name__}, not a dict of tensors")
    header: dict[str, Any] = {}
    _flatten(obj, "", header, torch)
    return header


def _flatten(obj: dict, prefix: str, out: dict[str, Any], torch: Any) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            dtype = _TORCH_DTYPES.get(str(value.dtype).removeprefix("torch."))
            if dtype is not None:
                out[name] = {"dtype": dtype, "shape": list(value.shape)}
        elif isinstance(value, dict):
            _flatten(value, f"{name}.", out, torch)


def _starts_like_pickle(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(1) == b"\x80"


def read_header(path: str | Path) -> dict[str, Any]:
    """The tensor table of a safetensors or torch checkpoint file, told apart by their first bytes."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("file", f"{path} is not a file")
    with path.open("rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # a torch zip archive, or a legacy pickle
        return read_torch_checkpoint(path)
    return read_safetensors_header(path)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
