"""Command-line front ends: flag definitions and the functions binaries call.

Each module defines its absl flags and a `main(argv)`; `bin/` scripts only
run `absl.app.run(module.main)`. Library code never reads flags.
"""
