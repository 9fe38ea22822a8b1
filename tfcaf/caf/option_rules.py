"""What a method's own option accepts, where its default's type does not
say (`methods.Method.option_rules`), and the one check of every option.

An option's default gives its type: an int (>= 1 unless an `AtLeast` rule
says otherwise), a float (finite), a bool, a str (one of a `Choice`'s
values), or None for an array drawn from the method's `seed` unless given
(its accepted shapes an `ArrayShape` rule). The binaries check options
before TensorFlow loads, so this module imports none (nor numpy).
"""

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    """A text option: one of `values`."""
    values: tuple


@dataclass(frozen=True)
class AtLeast:
    """An integer option's smallest value, where it is not 1."""
    least: int


@dataclass(frozen=True)
class ArrayShape:
    """An array option's accepted shapes, each a tuple of dimension
    letters: P the problems (images × targets), H, W, C those of the
    images, N any count (masks, noise samples).

    Example: `ArrayShape((("N", "H", "W"), ("P", "N", "H", "W")))`: one
    set of masks for every problem, or one per problem.
    """
    shapes: tuple

    def _bound(self, image_shape):
        problems, height, width, colours = image_shape
        return {"P": problems, "H": height, "W": width, "C": colours}

    def accepts(self, shape, image_shape):
        """Whether an array of `shape` fits images of (P, H, W, C)
        `image_shape`."""
        sizes = self._bound(image_shape)
        return any(len(shape) == len(letters) and
                   all(n >= 1 if letter == "N" else n == sizes[letter]
                       for letter, n in zip(letters, shape))
                   for letters in self.shapes)

    def describe(self, image_shape):
        """The accepted shapes for these images, e.g. "(N, 32, 32) or
        (P=2, N, 32, 32)"."""
        sizes = self._bound(image_shape)
        shown = {"N": "N", "P": f"P={sizes['P']}"}
        return " or ".join("(" + ", ".join(shown.get(letter, str(sizes.get(letter)))
                                           for letter in letters) + ")"
                           for letters in self.shapes)


def value_problem(default, value, rule):
    """Why `value` is not a valid value of an option with `default` and
    `rule` (None: it is, or it is an array, which `ArrayShape` checks
    against the images)."""
    if default is None:
        return None
    if isinstance(rule, Choice):
        return None if value in rule.values else \
            f"must be one of {', '.join(map(str, rule.values))}"
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be True or False"
    if isinstance(default, int):
        least = rule.least if isinstance(rule, AtLeast) else 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            return f"must be an integer >= {least}"
        return None
    if isinstance(default, float) and (isinstance(value, bool) or
                                       not isinstance(value, numbers.Real) or
                                       not math.isfinite(value)):
        return "must be a finite number"
    return None
