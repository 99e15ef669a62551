"""Run torch single-threaded around the toy networks."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def single_thread():
    """Run torch on one thread inside the block. These networks are tiny (a few thousand weights), so
    splitting each matrix product across threads costs more in synchronisation than it saves; on a
    busy machine two threads were measured 25x slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
