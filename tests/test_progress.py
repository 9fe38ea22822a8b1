"""The evaluation's progress line: redrawn on a terminal, a few plain lines
in a log, with images/s, ETA and each method's share of the time."""

import io

from tfcaf.durations import as_clock
from tfcaf.evaluation.progress import Progress


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_durations_read_as_clocks():
    assert [as_clock(s) for s in (0, 59.6, 61, 3600, 3725)] == \
        ["0:00", "1:00", "1:01", "1:00:00", "1:02:05"]


def test_terminal_line_is_redrawn_with_rate_eta_and_method_shares():
    now, out = _Clock(), _Terminal()
    progress = Progress(100, stream=out, now=now)
    now.t = 10.0
    progress.add_method_time("l2caf", 7.5)
    progress.add_method_time("gradcam", 2.5)
    progress.advance(20)
    # 20 images in 10 s: 2 img/s, 80 left: 40 s.
    assert out.getvalue() == ("\r[######                        ] 20/100 images  2.0 img/s  "
                              "ETA 0:40  (time: l2caf 75%, gradcam 25%)")
    progress.close()
    assert out.getvalue().endswith("done in 0:10\n") and "\n" not in out.getvalue()[:-1]


def test_a_log_gets_a_plain_line_every_interval_and_at_the_end():
    now, out = _Clock(), io.StringIO()
    progress = Progress(40, stream=out, every=30.0, now=now)
    for _ in range(4):
        now.t += 10.0
        progress.advance(10)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split("]")[1].split(" images")[0].strip() for line in lines] == ["30/40", "40/40"]
    progress.close()
    assert len(out.getvalue().splitlines()) == 2


def test_reused_images_count_as_done_but_not_in_the_rate():
    now, out = _Clock(), _Terminal()
    progress = Progress(100, stream=out, now=now)
    progress.add_reused(90)
    now.t = 5.0
    progress.advance(5)
    # 5 new images in 5 s: 1 img/s, 5 left: 5 s (not 95 images in 5 s).
    assert "95/100 images  1.0 img/s  ETA 0:05" in out.getvalue()
