"""The evaluation's progress line: images done / total, images/s, ETA and
where the time goes, per method.

On a terminal one line is redrawn in place; otherwise (a log file, CI) a
plain line is written at most every `every` seconds and at the end, so a
log holds a few readable lines instead of thousands of carriage returns.
Plain text on stderr rather than tqdm: tfcaf needs no more dependency for
one line, and the line stays out of stdout, which the binaries keep for
results.
"""

import sys
import threading
import time

from tfcaf.durations import as_clock


class Progress:
    """Progress of a pass over `total` images.

    Args:
        total: images in the pass.
        stream: where the line goes (default stderr).
        every: seconds between plain lines when `stream` is no terminal.
        now: the clock (a test passes its own).
    """

    def __init__(self, total, stream=None, every=30.0, now=time.monotonic):
        self.total, self.done, self.every, self.now = total, 0, every, now
        self.stream = stream or sys.stderr
        self.terminal = getattr(self.stream, "isatty", lambda: False)()
        self.started = self.last_line = now()
        self.method_seconds, self.reused = {}, 0
        # The replicas of a distributed pass report from threads of their own.
        self._lock = threading.Lock()

    def add_reused(self, count):
        """`count` images taken from a resumed run: done, but left out of
        the rate and the ETA."""
        self.done += count
        self.reused += count

    def add_method_time(self, method, seconds):
        """Counts `seconds` spent on `method` (its maps and metrics)."""
        with self._lock:
            self.method_seconds[method] = self.method_seconds.get(method, 0.0) + seconds

    def line(self):
        """The progress line as it stands."""
        elapsed = max(self.now() - self.started, 1e-9)
        rate = (self.done - self.reused) / elapsed
        bar = "#" * int(30 * self.done / max(self.total, 1))
        eta = as_clock((self.total - self.done) / rate) if rate else "?"
        spent = sum(self.method_seconds.values()) or 1.0
        shares = sorted(self.method_seconds.items(), key=lambda kv: -kv[1])[:3]
        methods = ", ".join(f"{m} {100 * s / spent:.0f}%" for m, s in shares)
        return (f"[{bar:<30}] {self.done}/{self.total} images  {rate:.1f} img/s  ETA {eta}"
                + (f"  (time: {methods})" if methods else ""))

    def advance(self, count):
        """`count` more images done: redraws the line (terminal) or writes
        it when `every` seconds have passed since the last."""
        with self._lock:
            self.done += count
            if self.terminal:
                self.stream.write("\r" + self.line())
            elif self.now() - self.last_line >= self.every or self.done >= self.total:
                self.stream.write(self.line() + "\n")
                self.last_line = self.now()
            self.stream.flush()

    def close(self):
        """Ends the redrawn line with the elapsed time."""
        if self.terminal:
            self.stream.write(f"\r{self.line()}  done in {as_clock(self.now() - self.started)}\n")
            self.stream.flush()
