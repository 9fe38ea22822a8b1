"""Recall@K speed and memory: tfcaf's chunked top-K vs a plain full-matrix
numpy version, measured in one run and printed as ratios.

    .venv/bin/python bench/retrieval_metrics.py [--n 100000] [--dim 128]
        [--baseline-n 20000] [--classes 1000]

The full N x N float32 matrix of 100,000 items needs 40 GB, so the numpy
baseline runs on --baseline-n items, where tfcaf is measured as well;
tfcaf alone then runs on --n items. Each measurement runs in a fresh
process (wall and CPU time: on a shared machine the CPU time is the steadier
figure); its peak memory is the rise of the peak resident set size over
the resident size just before the call (inputs and imports excluded).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

KS = (1, 2, 4, 8)


def make_data(n, dim, classes, seed=0):
    """Clustered float32 embeddings (n, dim) and labels (n,): recall is
    neither 0 nor 1, so a wrong neighbour list shows."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    centres = rng.standard_normal((classes, dim), dtype=np.float32)
    noise = rng.standard_normal((n, dim), dtype=np.float32)
    return centres[labels] + 2.0 * noise, labels


def numpy_full_matrix(x, labels, ks=KS):
    """The plain way: all N x N distances, then the K smallest per row."""
    squared = np.einsum("ij,ij->i", x, x)
    dist = x @ x.T
    dist *= -2.0
    dist += squared[:, None]
    dist += squared[None, :]
    np.fill_diagonal(dist, np.inf)
    kmax = max(ks)
    nearest = np.argpartition(dist, kmax, axis=1)[:, :kmax]
    order = np.argsort(np.take_along_axis(dist, nearest, axis=1), axis=1)
    nearest = np.take_along_axis(nearest, order, axis=1)
    same = labels[nearest] == labels[:, None]
    return {k: float(np.mean(same[:, :k].any(axis=1))) for k in ks}


def _rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def worker(method, n, dim, classes):
    """One measurement; prints a JSON line."""
    x, labels = make_data(n, dim, classes)
    if method == "tfcaf":
        from tfcaf.metrics import recall_at_k
        recall_at_k(x[:500], labels[:500])  # trace the tf.function first
        run = lambda: recall_at_k(x, labels, KS)  # noqa: E731
    else:
        run = lambda: numpy_full_matrix(x, labels)  # noqa: E731
    before = _rss_bytes()
    start, cpu_start = time.perf_counter(), time.process_time()
    recall = run()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"method": method, "n": n, "seconds": seconds,
                      "cpu_seconds": cpu_seconds,
                      "peak_bytes": max(peak - before, 0), "recall": recall}))


def measure(method, n, args):
    out = subprocess.run(
        [sys.executable, __file__, "--worker", method, "--n", str(n),
         "--dim", str(args.dim), "--classes", str(args.classes)],
        check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{method:>6} N={n:>7,}: {result['seconds']:8.2f} s wall, "
          f"{result['cpu_seconds']:8.2f} s CPU, peak "
          f"+{result['peak_bytes'] / 2 ** 30:6.2f} GiB, recall@1,2,4,8 = "
          + ", ".join(f"{v:.4f}" for v in result["recall"].values()), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--baseline-n", type=int, default=20_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--worker", choices=["tfcaf", "numpy"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.n, args.dim, args.classes)
        return
    print(f"recall@K, D={args.dim}, {args.classes} classes, {os.cpu_count()} CPUs")
    base = measure("numpy", args.baseline_n, args)
    ours = measure("tfcaf", args.baseline_n, args)
    # Both rank float32 distances computed in different orders, so an exact
    # near-tie may fall either way: allow a few queries of difference.
    diff = max(abs(base["recall"][k] - ours["recall"][k]) for k in base["recall"])
    if diff > 1e-3:
        raise SystemExit(f"tfcaf and numpy disagree on recall by {diff}")
    print(f"N={args.baseline_n:,}: numpy / tfcaf: wall time "
          f"{base['seconds'] / ours['seconds']:.2f}x, CPU time "
          f"{base['cpu_seconds'] / ours['cpu_seconds']:.2f}x, peak memory "
          f"{base['peak_bytes'] / max(ours['peak_bytes'], 1):.1f}x")
    if args.n != args.baseline_n:
        big = measure("tfcaf", args.n, args)
        full_matrix = args.n ** 2 * 4
        print(f"N={args.n:,}: the full float32 matrix alone would take "
              f"{full_matrix / 2 ** 30:.1f} GiB, "
              f"{full_matrix / max(big['peak_bytes'], 1):.1f}x tfcaf's peak")


if __name__ == "__main__":
    main()
