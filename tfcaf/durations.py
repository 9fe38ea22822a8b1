"""Durations as people read them in progress lines."""


def as_clock(seconds):
    """"1:05:09" / "5:09" for a duration in seconds."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
