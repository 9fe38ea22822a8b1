"""Names that the library's registries accept and the binaries' flags offer.

The binaries check flags and print `--help` before TensorFlow is imported
(it takes seconds), but the packages these names belong to import it when
loaded. So each name tuple is defined here, once, and its registry imports
it: `FILTERS`, `SOLVER_OPTIMIZERS` and `SOLVER_PRESETS`
(`tfcaf.caf.solver_config`), `OUTPUTS` (`tfcaf.caf.output_kind`), `DATASETS`
(`tfcaf.data`) and `BOX_PROTOCOLS` (`tfcaf.evaluation.config`). Method and
metric names need no copy: `tfcaf.caf.methods` and `tfcaf.metrics.registry`
themselves load no TensorFlow. `TARGET_KINDS` are the
kinds of target a method explains (`tfcaf.caf.targets`).

This module imports nothing.
"""

FILTERS = ("l2norm", "softmax", "gauss")
# "auto": the default solver of each kind of head (docs/method.md §1).
SOLVER_OPTIMIZERS = ("auto", "adam", "sgd", "lbfgs")
# "default": tfcaf's defaults; "authors": the authors' TF code (Adam);
# "authors_pytorch": the authors' PyTorch code (SGD). `SolverConfig.preset`.
SOLVER_PRESETS = ("default", "authors", "authors_pytorch")
# What a method explains: class ids, the output as a whole, or the cosine
# similarity of the output to a reference (`tfcaf.caf.targets`).
TARGET_KINDS = ("classes", "output", "similarity")
# What a model's output is: class logits, or an embedding (retrieval nets).
OUTPUTS = ("logits", "embedding")
# Input preprocessings, `tfcaf.models.preprocessing.MODES` (--preprocessing).
PREPROCESSING_MODES = ("caffe", "torch", "tf", "unit", "none", "clip")
DATASETS = ("digits", "cub", "imagenet", "folder")
# "wsolevaluation": boxes exactly as clovaai/wsolevaluation (the protocol of
# the WSOL literature, docs/method.md §5); "tfcaf": 8-connected components of
# the map at image size, exclusive box maxima.
BOX_PROTOCOLS = ("wsolevaluation", "tfcaf")
