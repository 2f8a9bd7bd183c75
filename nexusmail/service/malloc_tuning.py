"""Large buffers go back to the operating system once freed.

glibc serves an allocation above its mmap threshold with a mapping of its own, unmapped
on free; but each time such a block is freed it raises the threshold to that block's
size (up to 32 MB), so the next large mails come from the heap and the per-thread
arenas, which keep the memory. Forty concurrent 20 MB mails left the daemon ~330 MB
above its start that it never gave back; with the threshold fixed at 1 MiB the peak
was ~160 MB above it and fell back after. Fixing the threshold turns the raising off;
allocations under 1 MiB (nearly all of them) are served as before.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt()'s parameter number for the threshold, from glibc's <malloc.h>.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1024 * 1024


def fix_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Set glibc's mmap threshold for this process; False where there is no such knob."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
