"""Output names for input files that never collide."""

import collections
import os


def _unique(names):
    return len(set(names)) == len(names)


def output_stems(paths):
    """One output stem (no extension) per input path, all different.

    The file's stem when those are unique (`photos/cat.jpg` -> `cat`);
    else the path relative to the inputs' common folder (`a/x.jpg`,
    `b/x.jpg` -> `a/x`, `b/x`); where that still collides (`x.jpg` beside
    `x.png`) the extension joins the name (`x_jpg`, `x_png`).

    Args:
        paths: distinct files (as `expand_images` returns them).
    """
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if _unique(stems):
        return stems
    absolute = [os.path.abspath(p) for p in paths]
    root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    relative = [os.path.relpath(p, root) for p in absolute]
    stems = [os.path.splitext(r)[0] for r in relative]
    counts = collections.Counter(stems)
    return [stem if counts[stem] == 1 else stem + "_" + os.path.splitext(r)[1].lstrip(".")
            for stem, r in zip(stems, relative)]
