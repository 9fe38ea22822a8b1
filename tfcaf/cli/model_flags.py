"""`--preprocessing`, the model flag of every binary that loads a `.keras`
model to explain (visualize, evaluate, export), and the value it gives
`tfcaf.applications.load_model`.

The choices are `tfcaf.names.PREPROCESSING_MODES` (the keys of
`tfcaf.models.preprocessing.MODES`), read without loading TensorFlow, so a
typo is refused while flags are parsed.
"""

from absl import flags

from tfcaf.names import PREPROCESSING_MODES

FLAGS = flags.FLAGS


def define(flag_values=FLAGS):
    """Defines --preprocessing; returns its name, for `FLAG_GROUPS`."""
    flags.DEFINE_enum(
        "preprocessing", None, PREPROCESSING_MODES,
        "For a .keras model without a preprocessing layer of its own: what its inputs were "
        "(caffe, torch, tf: keras.applications' modes; unit: x / 255; none: raw pixels in "
        "[0, 255]; clip: OpenAI CLIP's means and stds); put before the model as a layer. "
        "Default: the model as it is, with a warning when it shows no preprocessing before "
        "its first convolution or Dense layer. Refused for application names and models that preprocess already.",
        flag_values=flag_values)
    return ("preprocessing",)


def preprocessing(flag_values=FLAGS):
    """--preprocessing's value for `load_model(..., preprocessing=)` (None
    when not given)."""
    return flag_values["preprocessing"].value
