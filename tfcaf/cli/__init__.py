"""Command-line front ends: `bin/X`, the `tfcaf-X` console scripts and
`python -m tfcaf.cli.X` (X: train, evaluate, export, visualize, demo).

Each module defines its absl flags, `FLAG_GROUPS` (its `--help`),
optionally `check_flags()` (checks across flags, e.g. the solver flags of
`solver_flags`) and `main(argv)`; `tfcaf.cli.launch.run` parses and checks
the flags before TensorFlow is imported, keeps TensorFlow quiet and turns user mistakes into one line.
Library code never reads flags.
"""
