"""idle-cpu.py MODEL THREADS [SECONDS] - CPU time a Session uses while it sits
idle between runs (the issue: no thread may spin between runs). Runs the
model a few times, then reads this process's user+system CPU time from
/proc/<pid>/task/*/schedstat before and after sleeping SECONDS (1), and prints one JSON
line: idle_cpu_ms, idle_s, threads (OS threads of the process), wait_policy.
Needs the onnxrun package (PYTHONPATH=build/python)."""
import json
import os
import sys
import time

import numpy as np
import onnxrun


def cpu_ms():
    """CPU time of all this process's threads: nanoseconds on the CPU from
    /proc/<pid>/task/*/schedstat, else clock ticks from /proc/<pid>/stat."""
    try:
        total = 0
        for t in os.listdir("/proc/%d/task" % os.getpid()):
            with open("/proc/%d/task/%s/schedstat" % (os.getpid(), t)) as f:
                total += int(f.read().split()[0])
        return total / 1e6
    except OSError:
        with open("/proc/%d/stat" % os.getpid()) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


model, threads = sys.argv[1], int(sys.argv[2])
idle = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
s = onnxrun.Session(model, threads=threads)
feeds = {}
for vi in s.inputs:
    shape = [d if isinstance(d, int) else 1 for d in vi.shape]
    feeds[vi.name] = np.zeros(shape, vi.dtype) if vi.dtype != np.float32 else \
        np.random.default_rng(0).standard_normal(shape).astype(np.float32)
for _ in range(5):
    s.run(None, feeds)
c0 = cpu_ms()
time.sleep(idle)
c1 = cpu_ms()
policy = " ".join("%s=%s" % (k, os.environ[k]) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
                  if k in os.environ) or "libgomp default"
print(json.dumps({"idle_cpu_ms": round(c1 - c0, 3), "idle_s": idle,
                  "threads": len(os.listdir("/proc/%d/task" % os.getpid())),
                  "wait_policy": policy}))
