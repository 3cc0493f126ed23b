"""A small seccomp filter for the sandbox (classic BPF, handed to ``bwrap --seccomp``).

It narrows the kernel surface that sandboxed code can reach, as container runtimes' default profiles do:

- no new user namespaces (``clone``/``unshare`` with ``CLONE_NEWUSER``): as root the sandbox has no user
  namespace of its own (see ``bwrap``), and one would give the code capabilities over fresh namespaces;
- ``clone3`` answers ENOSYS (its flags cannot be inspected; the C library falls back to ``clone``);
- no keyrings, eBPF, perf events, userfaultfd or io_uring;
- only the native x86-64 system call ABI (no x32, no 32-bit entry).

Other architectures get no filter (``seccomp_program`` returns None); the namespaces, the uid and the
dropped capabilities still hold there.
"""

from __future__ import annotations

import errno
import platform
import struct
from functools import lru_cache

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
CLONE_NEWUSER = 0x10000000
SYS_CLONE, SYS_UNSHARE, SYS_CLONE3 = 56, 272, 435
BLOCKED = {  # x86-64 numbers
    "add_key": 248, "request_key": 249, "keyctl": 250, "perf_event_open": 298, "bpf": 321, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
}

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data (little-endian low word of args[0])


@lru_cache(maxsize=1)
def seccomp_program() -> bytes | None:
    """The filter as an array of ``struct sock_filter`` (None where no filter is defined for this machine)."""
    if platform.machine() != "x86_64":
        return None
    # (opcode, k, jump-if-true label, jump-if-false label); labels are names or None for "next"
    code: list[tuple[int, int, str | None, str | None]] = [
        (_LD_W_ABS, _OFFSET_ARCH, None, None),
        (_JEQ, AUDIT_ARCH_X86_64, None, "deny"),
        (_LD_W_ABS, _OFFSET_NR, None, None),
        (_JGE, X32_SYSCALL_BIT, "deny", None),
        (_JEQ, SYS_CLONE, "flags", None),
        (_JEQ, SYS_UNSHARE, "flags", None),
        (_JEQ, SYS_CLONE3, "enosys", None),
        *((_JEQ, number, "deny", None) for number in BLOCKED.values()),
        (_RET, _RET_ALLOW, None, None),
    ]
    labels = {"flags": len(code)}
    code += [(_LD_W_ABS, _OFFSET_ARG0, None, None), (_JSET, CLONE_NEWUSER, "deny", None),
             (_RET, _RET_ALLOW, None, None)]
    labels["deny"] = len(code)
    code.append((_RET, _RET_ERRNO | errno.EPERM, None, None))
    labels["enosys"] = len(code)
    code.append((_RET, _RET_ERRNO | errno.ENOSYS, None, None))
    out = []
    for i, (op, k, true, false) in enumerate(code):
        jt = labels[true] - i - 1 if true else 0
        jf = labels[false] - i - 1 if false else 0
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise AssertionError("seccomp jump out of range")
        out.append(struct.pack("=HBBI", op, jt, jf, k))
    return b"".join(out)
