"""A bounded pickle reader for CIFAR-10 python batches: an opcode interpreter, not
`pickle.Unpickler`.

The file is parsed opcode by opcode (`pickletools.genops`, which never recurses) into
a stack machine that knows only what a CIFAR-10 batch needs: dicts, lists, tuples,
bytes, str, ints, floats, booleans, None, and numpy uint8 arrays. Nothing from the
file is ever called: the few numpy globals a batch names (`_reconstruct`, `ndarray`,
`dtype`, `_frombuffer`) and Python 3's `_codecs.encode` (how protocol 2 writes bytes)
are recognized by name and emulated here, each with its arguments checked. So:

- nesting is bounded (`MAX_DEPTH`), and a container cannot be modified after it was
  put in another one, so no cycle and no deep structure can be built behind the
  depth count (deep tuples crash CPython when hashed);
- memo indices are bounded (`MAX_MEMO`; the memo is a dict, so a huge index costs
  nothing before it is refused), and so is the number of opcodes (`MAX_OPCODES`);
- an array's declared shape must match the bytes present exactly: no zero strides,
  no array without its data, no images that are not in the file;
- out-of-band buffers (protocol 5 `NEXT_BUFFER`), persistent ids, extension codes
  and object-building opcodes are refused.

Memory is bounded by a small multiple of the file's size, and the parse by its
number of opcodes.
"""

import io
import math
import pickletools

import numpy as np

MAX_DEPTH = 8
MAX_MEMO = 1_000_000
MAX_OPCODES = 2_000_000
MAX_NDIM = 8
_DTYPES = ("u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "b1")

# Globals a CIFAR-10 batch may name, by (module, name) → the role emulated here.
# numpy 1.x pickles name numpy.core, numpy 2.x numpy._core.
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy.core.numeric", "_frombuffer"): "_frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "_frombuffer",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",
}


class Refused(Exception):
    """A pickle outside the format (the caller adds the file name)."""


class Malformed(Exception):
    """A pickle that breaks its own rules (the caller adds the file name)."""


class _Global:
    __slots__ = ("name", "role")

    def __init__(self, role: str, name: str):
        self.role, self.name = role, name


class _Pending:
    """`_reconstruct(ndarray, …)` before its BUILD supplies shape, dtype and data."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None


_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING"}  # Python 2 str → bytes
_SCALAR_OPS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT",
    "BINFLOAT", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
    "SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8",
}  # fmt: skip
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


def _shape(value) -> tuple[int, ...]:
    if not (
        isinstance(value, tuple)
        and len(value) <= MAX_NDIM
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and all(n >= 0 for n in value)
    ):
        raise Malformed(f"an array shape must be a tuple of ≤ {MAX_NDIM} sizes ≥ 0")
    return value


def _array(buffer, dtype, shape, order: str) -> np.ndarray:
    """The array whose bytes are `buffer`, refused unless they fill it exactly."""
    if not isinstance(dtype, np.dtype):
        raise Malformed("an array's dtype is not a dtype")
    if not isinstance(buffer, (bytes, bytearray)):
        raise Malformed("an array's data must be bytes")
    shape = _shape(shape)
    needed = math.prod(shape) * dtype.itemsize
    if len(buffer) != needed:
        raise Malformed(
            f"an array declares shape {shape} of {dtype} ({needed:,} bytes) but "
            f"holds {len(buffer):,} bytes"
        )
    return np.frombuffer(buffer, dtype).reshape(shape, order=order)


class _Machine:
    def __init__(self):
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.depth: dict[int, int] = {}  # id → nesting depth of each container
        self.sealed: set[int] = set()  # ids of containers placed in another
        self.keep: list = []  # keeps containers alive so their ids stay unique

    # -- containers -----------------------------------------------------------------
    def _item(self, value):
        """`value` as it enters a container: arrays resolved, containers sealed."""
        if isinstance(value, _Pending):
            if value.array is None:
                raise Malformed("a numpy array was rebuilt without its data (no BUILD)")
            return value.array
        if isinstance(value, (dict, list, tuple)):
            self.sealed.add(id(value))
        return value

    def _new(self, container, children):
        depth = 1 + max((self.depth.get(id(c), 0) for c in children), default=0)
        if depth > MAX_DEPTH:
            raise Refused(f"containers nested deeper than {MAX_DEPTH} levels")
        self.depth[id(container)] = depth
        self.keep.append(container)
        return container

    def _grow(self, container, children) -> None:
        if id(container) in self.sealed:
            raise Refused("a container modified after it was stored in another")
        depth = 1 + max((self.depth.get(id(c), 0) for c in children), default=0)
        if depth > MAX_DEPTH:
            raise Refused(f"containers nested deeper than {MAX_DEPTH} levels")
        self.depth[id(container)] = max(self.depth[id(container)], depth)

    def _pop_mark(self) -> list:
        if not self.marks:
            raise Malformed("an opcode needs a MARK and there is none")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _pop(self, n: int = 1) -> list:
        if len(self.stack) < n + (self.marks[-1] if self.marks else 0):
            raise Malformed("stack underflow")
        items = self.stack[-n:]
        del self.stack[-n:]
        return items

    def _tuple(self, items) -> tuple:
        items = [self._item(v) for v in items]
        return self._new(tuple(items), items)

    def _append(self, target, items) -> None:
        if not isinstance(target, list):
            raise Malformed("APPEND to something that is not a list")
        items = [self._item(v) for v in items]
        self._grow(target, items)
        target.extend(items)

    def _setitems(self, target, items) -> None:
        if not isinstance(target, dict) or len(items) % 2:
            raise Malformed("SETITEM(S) on something that is not a dict")
        items = [self._item(v) for v in items]
        self._grow(target, items)
        for key, value in zip(items[::2], items[1::2], strict=True):
            target[key] = value  # keys are hashable only if flat enough: depth-bounded

    # -- calls (emulated, never executed) ---------------------------------------------
    def _reduce(self, function, args):
        if not isinstance(function, _Global) or not isinstance(args, tuple):
            raise Malformed("REDUCE of something that is not an allowed global")
        role = function.role
        if (
            role == "_reconstruct"
        ):  # numpy.core.multiarray._reconstruct(ndarray, (0,), b"b")
            if not (len(args) == 3 and getattr(args[0], "role", None) == "ndarray"):
                raise Malformed("_reconstruct must rebuild a numpy.ndarray")
            return _Pending()
        if role == "dtype":  # numpy.dtype("u1", False, True)
            name = args[0] if args else None
            if isinstance(name, bytes):
                name = name.decode("latin-1")
            if name not in _DTYPES:
                raise Refused(f"dtype {name!r:.40} is not a plain numeric dtype")
            return np.dtype(name)
        if (
            role == "encode"
        ):  # Python 3 protocol 2 writes bytes as encode(str, "latin1")
            if not (
                len(args) == 2
                and isinstance(args[0], str)
                and args[1] in ("latin1", "latin-1")
            ):
                raise Refused("_codecs.encode is only allowed as encode(str, 'latin1')")
            return args[0].encode("latin-1")
        if (
            role == "_frombuffer"
        ):  # protocol 5: _frombuffer(buffer, dtype, shape, order)
            if len(args) != 4 or args[3] not in ("C", "F"):
                raise Malformed("_frombuffer needs (buffer, dtype, shape, 'C' or 'F')")
            return _array(*args)
        raise Refused(f"calling {function.name}")

    def _build(self, target, state) -> None:
        if isinstance(target, _Pending) and target.array is None:
            # ndarray.__setstate__((version, shape, dtype, is_fortran, data))
            if not (isinstance(state, tuple) and len(state) == 5):
                raise Malformed(
                    "an array's state must be (version, shape, dtype, F, data)"
                )
            _, shape, dtype, fortran, data = state
            if isinstance(data, str):
                data = data.encode("latin-1")
            target.array = _array(data, dtype, shape, "F" if fortran else "C")
        elif isinstance(target, np.dtype):
            # dtype.__setstate__: (version, byte order, …); only the byte order matters
            if not (isinstance(state, tuple) and len(state) in (8, 9)):
                raise Malformed("a dtype's state has the wrong length")
            order = (
                state[1].decode("latin-1") if isinstance(state[1], bytes) else state[1]
            )
            if order not in ("|", "<", ">", "="):
                raise Malformed(f"dtype byte order {order!r:.10}")
            if order in "<>" and target.itemsize > 1:
                self.stack[-1] = target.newbyteorder(order)
        else:
            raise Refused("BUILD of something other than a numpy array or dtype")

    # -- the loop -----------------------------------------------------------------------
    def run(self, data: bytes):
        stream = io.BytesIO(data)
        for count, (opcode, arg, _) in enumerate(pickletools.genops(stream)):
            if count >= MAX_OPCODES:
                raise Refused(f"more than {MAX_OPCODES:,} opcodes")
            name = opcode.name
            stack = self.stack
            if name in _SCALAR_OPS:
                stack.append(arg)
            elif name in _STRING_OPS:
                stack.append(arg.encode("latin-1") if isinstance(arg, str) else arg)
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name])
            elif name in ("PROTO", "FRAME"):
                pass
            elif name == "STOP":
                (result,) = self._pop()
                return self._item(result)
            elif name == "MARK":
                self.marks.append(len(stack))
            elif name == "POP":
                self._pop()
            elif name == "POP_MARK":
                self._pop_mark()
            elif name == "DUP":
                stack.append(self._pop()[0])
                stack.append(stack[-1])
            elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
                index = len(self.memo) if name == "MEMOIZE" else arg
                if not 0 <= index < MAX_MEMO:
                    raise Refused(f"memo index {index:,} (the bound is {MAX_MEMO:,})")
                if not stack:
                    raise Malformed("PUT with an empty stack")
                self.memo[index] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                if arg not in self.memo:
                    raise Malformed(f"memo index {arg:,} was never stored")
                stack.append(self.memo[arg])
            elif name == "EMPTY_DICT":
                stack.append(self._new({}, ()))
            elif name == "EMPTY_LIST":
                stack.append(self._new([], ()))
            elif name == "EMPTY_TUPLE":
                stack.append(self._new((), ()))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                stack.append(self._tuple(self._pop(int(name[-1]))))
            elif name == "TUPLE":
                stack.append(self._tuple(self._pop_mark()))
            elif name == "LIST":
                items = self._pop_mark()
                target = self._new([], ())
                self._append(target, items)
                stack.append(target)
            elif name == "DICT":
                items = self._pop_mark()
                target = self._new({}, ())
                self._setitems(target, items)
                stack.append(target)
            elif name == "APPEND":
                (item,) = self._pop()
                self._append(stack[-1] if stack else None, [item])
            elif name == "APPENDS":
                items = self._pop_mark()
                self._append(stack[-1] if stack else None, items)
            elif name == "SETITEM":
                key, value = self._pop(2)
                self._setitems(stack[-1] if stack else None, [key, value])
            elif name == "SETITEMS":
                items = self._pop_mark()
                self._setitems(stack[-1] if stack else None, items)
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, _, attribute = arg.partition(" ")
                else:
                    module, attribute = self._pop(2)
                    if not (isinstance(module, str) and isinstance(attribute, str)):
                        raise Malformed("STACK_GLOBAL needs two strings")
                role = _GLOBALS.get((module, attribute))
                if role is None:
                    raise RefusedGlobal(f"{module}.{attribute}"[:200])
                stack.append(_Global(role, f"{module}.{attribute}"))
            elif name == "REDUCE":
                function, args = self._pop(2)
                stack.append(self._reduce(function, args))
            elif name == "BUILD":
                (state,) = self._pop()
                if not stack:
                    raise Malformed("BUILD with an empty stack")
                self._build(stack[-1], self._item(state))
            elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
                raise Refused("out-of-band buffers (pickle protocol 5 NEXT_BUFFER)")
            elif name in ("PERSID", "BINPERSID"):
                raise Refused("a persistent id")
            else:  # EXT*, INST, OBJ, NEWOBJ*, sets: not in the format
                raise Refused(f"the {name} opcode")
        raise Malformed("no STOP opcode")  # pragma: no cover - genops raises first


class RefusedGlobal(Refused):
    """A global outside the format; its argument is "module.name"."""


def load(data: bytes):
    """The object pickled in `data`, parsed with the bounds of this module.

    **Raises:** `RefusedGlobal` (a global outside the format), `Refused` (a hostile
    construct), `Malformed` (broken rules), `EOFError` (the data ends before STOP).
    """
    machine = _Machine()
    try:
        return machine.run(data)
    except ValueError as error:  # genops: bad opcode, argument past the end, …
        text = str(error)
        if any(word in text for word in ("exhausted", "remain", "not enough data")):
            raise EOFError(text) from None
        raise Malformed(text) from None
