"""The only format data crosses the sandbox boundary in: JSON for structure, one .npz for arrays, never pickle.

`write(stem, obj)` stores numbers, strings, None, lists, tuples, dicts and arrays (numpy arrays, numpy
scalars and torch tensors, which arrive as numpy arrays) as STEM.json and STEM.npz; anything else (a
module, a function, a model object) is refused with a one-line error naming its type. `read(stem)` is
what the grader uses on files a submission's kernel wrote: it refuses links and non-regular files, files
over a size limit, arrays that are not plain numbers (np.load with allow_pickle=False), and structures
nested deeper than MAX_DEPTH, with a WireError saying which.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

MAX_DEPTH = 40
MAX_BYTES = 512 * 1024 * 1024  # per file read back from a kernel
ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex: no objects, strings or structured records
_TUPLE, _DICT, _ARRAY = "__tuple__", "__dict__", "__array__"


class WireError(ValueError):
    """Data that cannot be sent, or a file that cannot be read back safely."""


def _is_tensor(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach") and hasattr(obj, "numpy")


def encode(obj, arrays: dict | None = None, depth: int = 0):
    """(JSON-able tree, {key: ndarray}) for obj; WireError for anything that is not plain data."""
    import numpy as np

    arrays = {} if arrays is None else arrays
    if depth > MAX_DEPTH:
        raise WireError(f"the data is nested more than {MAX_DEPTH} levels deep")
    if obj is None or isinstance(obj, (bool, str)):
        return obj, arrays
    if isinstance(obj, int):
        return (obj if abs(obj) < 2**53 else float(obj)), arrays
    if isinstance(obj, float):
        return obj, arrays
    if _is_tensor(obj):
        tensor = obj.detach().cpu()
        if str(tensor.dtype) in ("torch.bfloat16", "torch.float16"):
            tensor = tensor.float()
        obj = tensor.numpy()
    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in ARRAY_KINDS or obj.dtype.fields is not None:
            raise WireError(f"an array of dtype {obj.dtype} cannot be sent (numbers and booleans only)")
        key = f"a{len(arrays)}"
        arrays[key] = obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)  # keeps 0-d arrays 0-d
        return {_ARRAY: key}, arrays
    if isinstance(obj, (list, tuple)):
        items = [encode(x, arrays, depth + 1)[0] for x in obj]
        return ({_TUPLE: items} if isinstance(obj, tuple) else items), arrays
    if isinstance(obj, dict):
        pairs = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise WireError(f"a dict key of type {type(k).__name__} cannot be sent")
            pairs.append([k, encode(v, arrays, depth + 1)[0]])
        return {_DICT: pairs}, arrays
    raise WireError(
        f"a {type(obj).__module__}.{type(obj).__qualname__} cannot be sent to the grader: return numbers, "
        "arrays or tensors (lists, tuples and dicts of them)"
    )


def decode(tree, arrays, depth: int = 0):
    if depth > MAX_DEPTH:
        raise WireError(f"the data is nested more than {MAX_DEPTH} levels deep")
    if isinstance(tree, list):
        return [decode(x, arrays, depth + 1) for x in tree]
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY}:
            try:
                return arrays[str(tree[_ARRAY])]
            except KeyError:
                raise WireError(f"array {tree[_ARRAY]!r} is missing from the .npz file") from None
        if set(tree) == {_TUPLE} and isinstance(tree[_TUPLE], list):
            return tuple(decode(x, arrays, depth + 1) for x in tree[_TUPLE])
        if set(tree) == {_DICT} and isinstance(tree[_DICT], list):
            out = {}
            for pair in tree[_DICT]:
                if not (isinstance(pair, list) and len(pair) == 2 and not isinstance(pair[0], (list, dict))):
                    raise WireError("a malformed dict entry")
                out[pair[0]] = decode(pair[1], arrays, depth + 1)
            return out
        raise WireError("a JSON object that is not one of the wire format's markers")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise WireError(f"unexpected JSON value of type {type(tree).__name__}")


def write(stem: str | os.PathLike, obj) -> Path:
    """Write obj as STEM.npz then STEM.json (the JSON, written last, marks a complete pair). Both atomic."""
    import io

    import numpy as np

    from ..core.io import write_bytes_atomic, write_text_atomic

    tree, arrays = encode(obj)
    stem = Path(stem)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(stem.with_suffix(".npz"), buf.getvalue())
    return write_text_atomic(stem.with_suffix(".json"), json.dumps(tree))


def read_regular_file(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file that is not a link, at most max_bytes long; WireError otherwise."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise WireError(f"{path.name}: cannot open it ({exc.strerror}; links are not followed)") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise WireError(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise WireError(f"{path.name} is {info.st_size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise WireError(f"{path.name} grew past the {max_bytes / 1e6:.0f} MB limit while being read")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read(stem: str | os.PathLike, max_bytes: int = MAX_BYTES):
    """Read back what `write` wrote, treating the files as hostile (see the module docstring)."""
    import io

    import numpy as np

    stem = Path(stem)
    text = read_regular_file(stem.with_suffix(".json"), max_bytes)
    blob = read_regular_file(stem.with_suffix(".npz"), max_bytes)
    try:
        tree = json.loads(text.decode("utf-8"))
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {}
            for key in npz.files:
                arr = npz[key]
                if arr.dtype.kind not in ARRAY_KINDS or arr.dtype.fields is not None:
                    raise WireError(f"array {key} has dtype {arr.dtype} (numbers and booleans only)")
                arrays[key] = arr
    except WireError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated zip, bad JSON, an object array: all "unreadable"
        raise WireError(f"{stem.name}: unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None
    try:
        return decode(tree, arrays)
    except RecursionError:
        raise WireError(f"{stem.name}: nested too deeply") from None
