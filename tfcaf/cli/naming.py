"""Output names for input files that never collide."""

import collections
import os


def _candidates(path, root):
    """The names `path` may get, shortest first; the last (the path from the
    inputs' common folder, extension included) differs for every file."""
    relative = os.path.relpath(os.path.abspath(path), root)
    stem, extension = os.path.splitext(relative)
    return [os.path.splitext(os.path.basename(path))[0], stem,
            stem + "_" + extension.lstrip("."), relative]


def output_stems(paths):
    """One output stem (no extension) per input path, all different, also
    when compared without case (one file on macOS and Windows).

    Each file gets the first of these names that no other file's name
    equals: the file's stem (`photos/cat.jpg` -> `cat`); the path from the
    inputs' common folder (`a/x.jpg`, `b/x.jpg` -> `a/x`, `b/x`); that with
    the extension (`x.jpg` beside `x.png` -> `x_jpg`, `x_png`); the path
    with its extension (`x.png` when `x_png.png` is an input too), which
    is unique, so the names are unique by construction (but for names
    that differ only in case: unique where the inputs could be told apart).

    Args:
        paths: distinct files (as `expand_images` returns them).
    """
    if not paths:
        return []
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    candidates = [_candidates(p, root) for p in paths]
    levels = [0] * len(paths)
    while True:
        names = [c[level] for c, level in zip(candidates, levels)]
        counts = collections.Counter(n.casefold() for n in names)
        clashing = [i for i, n in enumerate(names) if counts[n.casefold()] > 1]
        movable = [i for i in clashing if levels[i] < len(candidates[i]) - 1]
        if not movable:
            # Only last candidates clash, and only in case (X.png, x.png):
            # distinct files, so the inputs' file system tells case apart.
            return names
        for i in movable:
            levels[i] += 1
