"""demo_out/report.md: every method × every metric, three tables per
network (localization, faithfulness, stability and complexity), the protocol
of each metric as the evaluations recorded it, seed stability, examples and
timings."""

import os
import platform

# The report's tables per network: (title, part of the run, metric
# families of the registry). The parts: "localization" (LOCALIZATION +
# retrieval metrics) and "faithfulness", each run on its own image count.
# Columns, their direction and their protocol sentences come from the
# registry too.
TABLES = (
    ("localization", "localization", ("localization",)),
    ("faithfulness", "faithfulness", ("faithfulness",)),
    ("stability and complexity", "faithfulness", ("robustness", "complexity")),
)
# What the protocol sentences of the evaluations do not say.
NOTES = (
    "Top-1 localization also needs the predicted class right (classifiers) or the nearest neighbour "
    "to share the query's class (retrieval nets, R@1; docs/method.md §5).",
    "Scores are the ground-truth class's softmax probability (classifiers) or the cosine similarity "
    "to the image's embedding (retrieval nets, for which no reference library computes "
    "these metrics). On a retrieval net Increase in Confidence is 0 by construction (an "
    "image's cosine to its own embedding is already 1), and a deletion AUC can be below 0 "
    "(the cosine of a half-deleted image's embedding to the original's turns negative).",
    "Perturbation counts below the references' defaults, for time: see each protocol.",
)


def table_columns(families, computed):
    """[(column, title)] of the `computed` metrics of the registry's
    `families`: ↓ where lower is better."""
    from tfcaf.metrics import registry
    columns = []
    for metric in registry.METRICS.values():
        if metric.family in families and metric.name in computed:
            columns += [(c, c + (" ↓" if c in metric.lower_is_better else ""))
                        for c in metric.shown]
    return columns


def method_rows(summaries, methods, part, columns):
    """method -> {title: value, "images": count} of one network's `part`
    ("localization" | "faithfulness"); None where the method does not apply.

    Args:
        summaries: {"localization": [evaluation summaries], "faithfulness":
            [...]}: each part's runs (the one-pass and the many-pass
            methods are evaluated on different image counts).
        methods: the methods, in the order of the rows.
        columns: [(column, title)] (`table_columns`).
    """
    rows = {}
    for method in methods:
        values, images = next(((s["methods"][method], s["images"]) for s in summaries[part]
                               if method in s["methods"]), (None, None))
        rows[method] = {title: None if values is None else values.get(column)
                        for column, title in columns}
        rows[method]["images"] = "–" if images is None else str(images)
    return rows


def protocol_lines(results):
    """One line per metric: its protocol as the evaluations recorded it."""
    protocols = {}
    for result in results.values():
        for part in ("localization", "faithfulness"):
            for summary in result[part]:
                for name, text in summary["protocols"].items():
                    protocols.setdefault(name, text)
    return [f"- **{name}**: {text}." for name, text in protocols.items()] + \
        [f"- {note}" for note in NOTES]


def introduction(results, options, many_pass):
    """The report's opening paragraph: what ran on how many images."""
    counts = sorted({s["images"] for r in results.values() for s in r["localization"]})
    faithful = sorted({s["images"] for r in results.values() for s in r["faithfulness"]})
    def listed(table):
        return ", ".join(f"{m} {k}={v}" for m, values in table.items() for k, v in values.items())
    settings, metric_settings = listed(options["method_options"]), listed(options["metric_options"])
    return [
        "Retrieval nets are evaluated on the held-out classes 5-9, the classifiers on the "
        "test split, on evenly spaced images: the one-pass methods on "
        f"{options['max_images']} for localization and {options['faithfulness_images']} for "
        f"faithfulness, the many-pass ones ({', '.join(many_pass)}: tens to thousands of "
        f"forward passes per image) on {options['many_pass_images']} for both (the `images` "
        f"column: localization / faithfulness; image counts {counts} and {faithful} where a "
        "split is smaller). "
        f"{options['faithfulness_step']} pixels per deletion/insertion step. Rates in % "
        "(localization, PxAP, Average Drop, Increase in Confidence, pointing game), the others "
        "as computed (AUCs in [0, 1], correlations in [−1, 1], ROAD a change of score, "
        "stability a relative change of the map, complexity in nats); '–': the method does "
        "not apply (CAM needs class logits and a convolutional feature map pooled by GAP). "
        "Methods run "
        "with their reference defaults"
        + (f", except {settings} (for time)" if settings else "") + "; metrics with theirs"
        + (f", except {metric_settings} (for time)" if metric_settings else "") + ". On the "
        "retrieval "
        "nets, the methods that explain no embedding by themselves (Score-CAM, Ablation-CAM, "
        "Occlusion, RISE, class-specific L2-CAF) explain each image's cosine similarity to "
        "its own embedding; the others explain the embedding (docs/method.md §2). Each "
        "network's split layer, L2-CAF solver (resolved for its head: "
        f"iteration cap {options['solver'].max_iterations}, seed {options['solver'].seed}), "
        "method and metric options, degenerate-map counts and versions are recorded in "
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
    from tfcaf.metrics import registry
    percent = {c + arrow for m in registry.METRICS.values() for c in m.percent
               for arrow in ("", " ↓")}
    computed = {name for r in results.values() for part in ("localization", "faithfulness")
                for s in r[part] for name in s["protocols"]}
    for name, summaries in results.items():
        lines += [f"## {name}", ""]
        for title, part, families in TABLES:
            columns = table_columns(families, computed)
            lines += [f"**{title}**", "", markdown_table(
                method_rows(summaries, methods, part, columns),
                [t for _, t in columns] + ["images"], percent_columns=percent), ""]
    lines += ["## Protocols", ""] + protocol_lines(results) + [""]
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
