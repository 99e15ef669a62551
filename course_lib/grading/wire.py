"""The only format data crosses the sandbox boundary in: JSON for structure, one .npz for arrays, never pickle.

`write(stem, obj)` stores numbers, strings, None, lists, tuples, dicts and arrays (numpy arrays, numpy
scalars and torch tensors, which arrive as numpy arrays) as STEM.json and STEM.npz; anything else (a
module, a function, a model object) is refused with a one-line error naming its type. `read(stem)` is
what the grader uses on files a submission's kernel wrote: it refuses links, hard links and non-regular files, and is
bounded by what the files unpack to, not only by their size (a few MB of compressed zeros can declare an
array of many GB, a JSON file of empty lists takes 20 times its size as Python objects):

- the JSON must be at most MAX_JSON_BYTES long, hold at most MAX_JSON_ITEMS values (an upper bound counted
  on the bytes before anything is parsed) and nest at most MAX_DEPTH levels;
- each array's .npy header (shape and dtype) is read and checked before any memory is allocated for it: plain
  numbers and booleans only (no objects, strings or records), at most MAX_ARRAY_BYTES for all arrays of one
  read together, at most MAX_ARRAYS of them; the data is then read into exactly that much memory.

`load_json` and `load_notebook` apply the same kind of limits to the other JSON a submission produces (the
kernel's report, the executed notebook, the submitted notebook: cells, outputs per cell). Every refusal is a
WireError saying which limit.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

MAX_DEPTH = 40
MAX_BYTES = 512 * 1024 * 1024  # per file read back from a kernel (the default of read_regular_file)
MAX_JSON_BYTES = 64 * 1024 * 1024  # the .json of one read
MAX_JSON_ITEMS = 1_000_000  # values in it (each costs 50-100 bytes as a Python object)
MAX_ARRAY_BYTES = 256 * 1024 * 1024  # what the arrays of one read unpack to, together
MAX_ARRAYS = 10_000
NOTEBOOK_ITEMS, NOTEBOOK_CELLS, NOTEBOOK_OUTPUTS = 2_000_000, 5_000, 2_000  # load_notebook's defaults
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
        if info.st_nlink > 1:  # a hard link to a file the grader's user may read and the submission may not
            raise WireError(f"{path.name} has other hard links")
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


def json_items(data: bytes | str) -> int:
    """An upper bound on the values in a JSON text (every value but the first follows a comma, a colon or an
    opening bracket; those inside strings only make the bound larger)."""
    if isinstance(data, str):
        return data.count(",") + data.count(":") + data.count("[") + data.count("{") + 1
    return data.count(b",") + data.count(b":") + data.count(b"[") + data.count(b"{") + 1


def _depth(tree) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def load_json(
    data: bytes | str, what: str, max_bytes: int = MAX_JSON_BYTES, max_items: int = MAX_JSON_ITEMS, max_depth: int = 200
):
    """json.loads within limits on the text's length, the number of values and the nesting; WireError otherwise."""
    if len(data) > max_bytes:
        raise WireError(f"{what} is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
    items = json_items(data)
    if items > max_items:
        raise WireError(f"{what} holds up to {items:,} values, over the limit of {max_items:,}")
    try:
        tree = json.loads(data)
    except RecursionError:
        raise WireError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise WireError(f"{what} is not valid JSON ({str(exc)[:200]})") from None
    if _depth(tree) > max_depth:
        raise WireError(f"{what} is nested more than {max_depth} levels deep")
    return tree


def load_notebook(
    data: bytes,
    what: str = "the notebook",
    max_items: int = NOTEBOOK_ITEMS,
    max_cells: int = NOTEBOOK_CELLS,
    max_outputs: int = NOTEBOOK_OUTPUTS,
):
    """A notebook (nbformat 4) from hostile bytes, checked against load_json's limits and on its number of cells
    and of outputs per cell before nbformat builds anything from it; WireError otherwise."""
    import nbformat

    text = data.decode("utf-8", "replace")
    tree = load_json(text, what, max_bytes=len(text), max_items=max_items)
    if not isinstance(tree, dict) or not isinstance(tree.get("cells"), list):
        raise WireError(f"{what} has no list of cells")
    if len(tree["cells"]) > max_cells:
        raise WireError(f"{what} has {len(tree['cells']):,} cells, over the limit of {max_cells:,}")
    for cell in tree["cells"]:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        if isinstance(outputs, list) and len(outputs) > max_outputs:
            raise WireError(f"{what} has a cell with {len(outputs):,} outputs, over the limit of {max_outputs:,}")
    del tree
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - any failure of nbformat: not a notebook
        raise WireError(
            f"{what} is not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None


def _open_regular_file(path: Path, max_bytes: int):
    """An open binary file object for a regular file that is not a link, at most max_bytes long."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise WireError(f"{path.name}: cannot open it ({exc.strerror}; links are not followed)") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1 or info.st_size > max_bytes:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise WireError(f"{path.name} is not a regular file")
        if info.st_nlink > 1:
            raise WireError(f"{path.name} has other hard links")
        raise WireError(f"{path.name} is {info.st_size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit")
    return os.fdopen(fd, "rb")


def _array_header(f, key: str):
    """(shape, fortran_order, dtype) from the .npy header at f's position, refusing what is not plain numbers."""
    import numpy as np
    from numpy.lib import format as npy

    version = npy.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(f)
    else:
        raise WireError(f"array {key}: .npy format version {version} is not accepted")
    dtype = np.dtype(dtype)
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.hasobject or dtype.subdtype is not None:
        raise WireError(f"array {key} has dtype {dtype} (numbers and booleans only)")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise WireError(f"array {key} has an invalid shape {shape!r}")
    return shape, fortran, dtype


def load_arrays(f, what: str, max_bytes: int = MAX_ARRAY_BYTES, max_arrays: int = MAX_ARRAYS) -> dict:
    """{key: ndarray} from an .npz file object, every header checked before its array is allocated."""
    import math
    import zipfile

    import numpy as np

    arrays, total = {}, 0
    with zipfile.ZipFile(f) as npz:
        members = npz.infolist()
        if len(members) > max_arrays:
            raise WireError(f"{what} holds {len(members):,} arrays, over the limit of {max_arrays:,}")
        for member in members:
            key = member.filename.removesuffix(".npy")
            with npz.open(member) as data:
                shape, fortran, dtype = _array_header(data, key)
                size = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
                total += size
                if total > max_bytes:
                    raise WireError(
                        f"{what}: array {key} (shape {shape}, {dtype}) would unpack to {size / 1e6:,.0f} MB; "
                        f"the arrays of one result may hold {max_bytes / 1e6:,.0f} MB together"
                    )
                buffer = bytearray(size)
                view, filled = memoryview(buffer), 0
                while filled < size:
                    n = data.readinto(view[filled:])
                    if not n:
                        raise WireError(f"{what}: array {key} is truncated")
                    filled += n
                array = np.frombuffer(buffer, dtype=dtype)
                arrays[key] = array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
    return arrays


def read(
    stem: str | os.PathLike,
    max_bytes: int = MAX_JSON_BYTES,
    max_array_bytes: int = MAX_ARRAY_BYTES,
    max_items: int = MAX_JSON_ITEMS,
):
    """Read back what `write` wrote, treating the files as hostile (see the module docstring)."""
    stem = Path(stem)
    tree = load_json(read_regular_file(stem.with_suffix(".json"), max_bytes), f"{stem.name}.json", max_bytes, max_items)
    try:
        with _open_regular_file(stem.with_suffix(".npz"), max_array_bytes + 512 * MAX_ARRAYS) as f:
            arrays = load_arrays(f, f"{stem.name}.npz", max_array_bytes)
    except WireError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated zip, a bad header: all "unreadable"
        raise WireError(f"{stem.name}: unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None
    try:
        return decode(tree, arrays)
    except RecursionError:
        raise WireError(f"{stem.name}: nested too deeply") from None
