"""demo_out/report.md: every method × every metric, one table per network,
the protocol of each metric, seed stability, examples and timings."""

import os
import platform

# (column in the report, part of the run, column in its per-method rows).
# The parts: "localization" (LOCALIZATION + retrieval metrics) and
# "faithfulness", each run on its own image count.
COLUMNS = (
    ("top-1 loc", "localization", "top1_loc"),
    ("GT-known loc", "localization", "gt_known_loc"),
    ("MaxBoxAcc", "localization", "maxboxacc_v1"),
    ("MaxBoxAccV2", "localization", "maxboxacc_v2"),
    ("deletion ↓", "faithfulness", "deletion_auc"),
    ("insertion ↑", "faithfulness", "insertion_auc"),
    ("Avg Drop ↓", "faithfulness", "average_drop"),
    ("Incr. Conf. ↑", "faithfulness", "increase_in_confidence"),
    ("pointing ↑", "faithfulness", "pointing_game"),
)
PROTOCOLS = (
    "**top-1 / GT-known loc**: the largest-contour box of the heatmap at τ = 0.2, "
    "correct at IoU ≥ 0.5 with a ground-truth box; top-1 also needs the predicted class "
    "right (ADL) or the nearest neighbour to share the query's class (retrieval nets, R@1; "
    "docs/method.md §5). **MaxBoxAcc**: the best τ of 0, 0.01, ..., 0.99 (Choe et al., CVPR "
    "2020); **MaxBoxAccV2**: all contours, mean over IoU 0.3, 0.5, 0.7 (wsolevaluation's "
    "`--box_v2_metric`). Every box count equals clovaai/wsolevaluation@96f4b88's "
    "(`evaluation.py`) on the same maps and boxes.",
    "**deletion / insertion** (AUC × 100; Petsiuk et al. 2018): removed pixels become the "
    "substrate (black for the digits models, whose preprocessing is x / 255); insertion "
    "starts from eclique/RISE's Gaussian blur (gkern(11, 5)); trapezoid AUC on [0, 1]. "
    "Scores are the "
    "ground-truth class's softmax probability (ADL) or the cosine similarity to the image's "
    "embedding (retrieval nets). For classifiers it follows eclique/RISE's `CausalMetric`; "
    "no reference repository computes it for retrieval nets.",
    "**Average Drop / Increase in Confidence** (Chattopadhay et al. 2018): the score's "
    "relative drop on image ⊙ heatmap, and the share of images whose score rises, the "
    "product taken in the model's input space as pytorch-grad-cam's "
    "`multiply_tensor_with_cam` does. On a retrieval net Increase in Confidence is 0 by "
    "construction: an image's cosine to its own embedding is already 1.",
    "**pointing game** (Zhang et al. 2016): the heatmap's maximum lies in a ground-truth "
    "box ± 15 px.",
)


def method_rows(summaries, methods):
    """method -> {report column: value, "images": "loc / faithfulness"
    image counts} of one network; None where the method does not apply.

    Args:
        summaries: {"localization": [evaluation summaries], "faithfulness":
            [...]}: each part's runs (the one-pass and the many-pass
            methods are evaluated on different image counts).
        methods: the methods, in the order of the rows.
    """
    def find(part, method):
        return next(((s["methods"][method], s["images"]) for s in summaries[part]
                     if method in s["methods"]), (None, None))
    rows = {}
    for method in methods:
        row, counts = {}, []
        for part in ("localization", "faithfulness"):
            values, images = find(part, method)
            counts.append("–" if images is None else str(images))
            for title, column_part, column in COLUMNS:
                if column_part == part:
                    row[title] = None if values is None else values.get(column)
        row["images"] = " / ".join(counts)
        rows[method] = row
    return rows


def introduction(results, options, many_pass):
    """The report's opening paragraph: what ran on how many images."""
    counts = sorted({s["images"] for r in results.values() for s in r["localization"]})
    faithful = sorted({s["images"] for r in results.values() for s in r["faithfulness"]})
    settings = ", ".join(f"{m} {k}={v}" for m, values in options["method_options"].items()
                         for k, v in values.items())
    return [
        "Retrieval nets are evaluated on the held-out classes 5-9, the ADL classifier on the "
        "test split, on evenly spaced images: the one-pass methods on "
        f"{options['max_images']} for localization and {options['faithfulness_images']} for "
        f"faithfulness, the many-pass ones ({', '.join(many_pass)}: tens to thousands of "
        f"forward passes per image) on {options['many_pass_images']} for both (the `images` "
        f"column: localization / faithfulness; image counts {counts} and {faithful} where a "
        "split is smaller). "
        f"{options['faithfulness_step']} pixels per deletion/insertion step. Numbers in %, "
        "AUCs × 100; '–': the method does not apply (CAM needs class logits). Methods run "
        "with their reference defaults"
        + (f", except {settings} (for time)" if settings else "") + ". On the retrieval "
        "nets, the methods that explain no embedding by themselves (Score-CAM, Ablation-CAM, "
        "Occlusion, RISE, class-specific L2-CAF) explain each image's cosine similarity to "
        "its own embedding; the others explain the embedding (docs/method.md §2). Each "
        "network's split layer, L2-CAF solver (resolved for its head: "
        f"iteration cap {options['solver'].max_iterations}, seed {options['solver'].seed}), "
        "method options, degenerate-map counts and versions are recorded in "
        "`eval/NAME/**/metrics.json` (\"settings\").", ""]


def report_lines(results, timings, smoke, options, methods, many_pass):
    """The lines of report.md."""
    from tfcaf.evaluation.report import markdown_table
    lines = ["# tfcaf demo: every method on the embedded cluttered digits", ""]
    if smoke:
        lines += ["**Smoke run** (a few steps and images): numbers are meaningless.", ""]
    lines += introduction(results, options, many_pass)
    retrieval = {name: {**r["localization"][0].get("retrieval", {}),
                        "images": r["localization"][0]["images"]}
                 for name, r in results.items() if r["localization"][0].get("retrieval")}
    lines += [
        "## Retrieval", "", markdown_table(retrieval, ["recall@1", "nmi", "images"], "network"),
        "", "NMI: scikit-learn `KMeans(n_init=10, random_state=0)` and NMI with the geometric "
        "mean, as the metric-learning literature computes it (equal to scikit-learn's "
        "`normalized_mutual_info_score(average_method='geometric')`).", ""]
    columns = [title for title, _, _ in COLUMNS] + ["images"]
    for name, summaries in results.items():
        lines += [f"## {name}", "", markdown_table(method_rows(summaries, methods), columns),
                  ""]
    lines += ["## Protocols", ""] + [f"- {p}" for p in PROTOCOLS] + [""]
    lines += seed_lines(results)
    lines += ["## Examples and deletion/insertion curves", ""]
    for name in results:
        lines += [f"### {name}", "", f"![{name}](eval/{name}/examples.png)", "",
                  f"![{name} curves](eval/{name}/faithfulness/curves.png)", ""]
    lines += ["## Time", "", f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores.", ""]
    lines += [f"- {step}: {seconds:.0f} s" for step, seconds in timings.items()]
    return lines


def seed_lines(results):
    """The L2-CAF seed-stability section."""
    from tfcaf.evaluation.report import markdown_table
    seeds = {name: {"solver": f"{r['seeds']['solver']['optimizer']} ×"
                    f"{r['seeds']['solver']['restarts']}",
                    **{k: r["seeds"][k] for k in ("pearson_min", "pearson_median", "below_0.9",
                                                  "images")}}
             for name, r in results.items()}
    return ["## L2-CAF seed stability", "", markdown_table(
        seeds, ["solver", "pearson_min", "pearson_median", "below_0.9", "images"], "network",
        percent=False),
        "", "Per-image Pearson correlation of the class-oblivious L2-CAF maps of two runs that "
        "differ only in their random initial filters (seeds 0 and 1; solver: the optimizer "
        "resolved for the head × its starts per image). The objective is not convex, so a map "
        "can change with its start (docs/method.md §1, \"Restarts and seed stability\"); "
        "`below_0.9`: % of images under 0.9.", ""]
