"""What every benchmark records about where it ran: the machine, the library versions,
and wall-clock plus CPU time of a call (steadier on a shared machine)."""

import os
import platform
import time

import numpy as np


def versions():
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "numpy": np.__version__,
            "keras": keras.__version__, "tensorflow": tf.__version__,
            "backend": keras.backend.backend()}


def processor():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def machine():
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return (f"{platform.machine()}, {processor()}, "
            f"{os.cpu_count()} CPUs ({cpus} usable), {platform.system()} "
            f"{platform.release()}")


def load_average():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def timed(function):
    """Wall-clock and process CPU seconds of ``function()``, and its result. On a shared
    machine the CPU time is the steadier of the two: it leaves out the time spent waiting
    for a core."""
    cpu, start = time.process_time(), time.perf_counter()
    out = function()
    return time.perf_counter() - start, time.process_time() - cpu, out
