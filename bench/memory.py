"""Peak resident memory of a process and all its descendants, sampled from /proc."""

import os
import threading
import time


def _children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_rss_mb(pid):
    """Sum of VmRSS over `pid` and its descendants, in MiB."""
    kids = _children()
    todo, total = [pid], 0
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class TreeSampler:
    """Samples `tree_rss_mb(pid)` every `every` seconds on a thread; `stop()` returns the peak."""

    def __init__(self, pid, every=0.05):
        self.pid, self.every, self.peak = pid, every, 0.0
        self._done = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss_mb(self.pid))
            time.sleep(self.every)

    def stop(self):
        self._done.set()
        self._t.join()
        return round(self.peak)
