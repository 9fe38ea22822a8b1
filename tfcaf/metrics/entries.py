"""The built-in entries of the metric registry (`tfcaf.metrics.registry`),
in the order the report shows them. Each names its library function; the
registry imports it when the metric first runs.

Protocol sentences are formatted with the metric's resolved options and
{score} (what the model's output is scored by), {substrate} (the RGB of
removed pixels) and {box_reference} (the box protocol's reference)."""

from tfcaf.metrics.registry import Metric, register

_LOC, _FAITH = "tfcaf.metrics.localization", "tfcaf.metrics.faithfulness"
_PX = "tfcaf.metrics.pixel_precision"
_SCORED = ("predict", "images", "heatmaps", "targets", "embedding", "substrate",
           "batch_size")

register(Metric(
    name="iou", family="localization",
    description="top-1 / GT-known localization: the box at τ has IoU ≥ δ with a GT box",
    function=f"{_LOC}:localization_accuracy", batch_function=f"{_LOC}:box_ious",
    inputs=("maps", "heatmaps", "gt_boxes=boxes", "image_size"),
    options={"cam_threshold": 0.2, "iou_threshold": 0.5, "box_protocol": "wsolevaluation"},
    values=("iou",), summarize=f"{_LOC}:localization_summary", needs=("boxes",),
    percent=("top1_loc", "gt_known_loc"), headline=("top1_loc", "gt_known_loc"),
    protocol="largest-contour box at τ = {cam_threshold}, IoU ≥ {iou_threshold}; "
             "{box_protocol} protocol, {box_reference}"))

register(Metric(
    name="maxboxacc", family="localization",
    description="MaxBoxAcc / MaxBoxAccV2 (Choe et al. 2020) over τ = 0, 0.01, ..., 0.99",
    function=f"{_LOC}:max_box_acc", batch_function=f"{_LOC}:box_sweep_counts",
    inputs=("maps", "heatmaps", "gt_boxes=boxes", "image_size"),
    options={"box_protocol": "wsolevaluation"}, values=("v1_hits", "v2_hits", "images"),
    summarize=f"{_LOC}:max_box_acc_summary", needs=("boxes",),
    percent=("maxboxacc_v1", "maxboxacc_v2"), headline=("maxboxacc_v1", "maxboxacc_v2"),
    protocol="MaxBoxAcc / MaxBoxAccV2, {box_protocol} protocol, {box_reference}"))

register(Metric(
    name="pxap", family="localization",
    description="PxAP (Choe et al. 2020): pixel average precision against GT masks",
    function=f"{_PX}:pxap", batch_function=f"{_PX}:batch_histograms",
    inputs=("heatmaps", "masks"), options={"interval": 0.001},
    values=("foreground", "background"), summarize=f"{_PX}:pxap_summary",
    needs=("masks",), percent=("pxap",), headline=("pxap",),
    protocol="heatmap pixels against GT foreground masks, bins of {interval:g}, equal to "
             "clovaai/wsolevaluation@96f4b88 MaskEvaluator"))

register(Metric(
    name="recall", family="retrieval", scope="outputs",
    description="Recall@K (K = 1, 2, 4, 8) of the embeddings",
    function="tfcaf.metrics.retrieval:recall_at_k",
    batch_function="tfcaf.metrics.retrieval:recall_columns", options={"ks": (1, 2, 4, 8)},
    needs=("embedding",), protocol="Euclidean nearest neighbours, the query left out"))

register(Metric(
    name="nmi", family="retrieval", scope="outputs",
    description="NMI of K-means clusters of the embeddings",
    function="tfcaf.metrics.retrieval:nmi", batch_function="tfcaf.metrics.retrieval:nmi_columns",
    options={"nmi_inits": 10, "seed": 0}, needs=("embedding",),
    protocol="scikit-learn KMeans(n_init={nmi_inits}, random_state={seed}) + NMI (geometric "
             "mean), as in the metric-learning literature"))

_CURVE_OPTIONS = {"step": None, "protocol": "rise", "steps": None,
                  "max_percentage_perturbed": None}


def _curve_protocols(name, start):
    """Deletion's or insertion's (`name`) sentence per protocol (`start`:
    where the pixels come from)."""
    return {
        "rise": "eclique/RISE CausalMetric (Petsiuk et al. 2018, the default: the metric's "
                "own code): {score}, {step} pixels per step, most salient first, " + start +
                ", trapezoid AUC on [0, 1]",
        "xplique": f"xplique 2.0.2 {name}" +
                   ": {score}, {steps} steps up to {max_percentage_perturbed} of the pixels, "
                   "baseline RGB ({substrate}), mean of the trapezoids"}


register(Metric(
    name="deletion", family="faithfulness",
    description="deletion AUC (RISE): score while the most salient pixels are removed",
    function=f"{_FAITH}:deletion", inputs=_SCORED, options=dict(_CURVE_OPTIONS),
    config_fields={"step": "faithfulness_step"}, values=("deletion", "deletion_curve"),
    columns={"deletion_auc": "deletion"}, curves={"deletion": "deletion_curve"},
    lower_is_better=("deletion_auc",), needs=("scores",),
    protocol=_curve_protocols("Deletion",
                              "removed pixels set to the substrate RGB ({substrate})")))

register(Metric(
    name="insertion", family="faithfulness",
    description="insertion AUC (RISE): score while the most salient pixels return onto a "
                "blurred image",
    function=f"{_FAITH}:insertion", inputs=_SCORED, options=dict(_CURVE_OPTIONS),
    config_fields={"step": "faithfulness_step"}, values=("insertion", "insertion_curve"),
    columns={"insertion_auc": "insertion"}, curves={"insertion": "insertion_curve"},
    needs=("scores",),
    protocol=_curve_protocols("Insertion", "inserted onto eclique/RISE's blur gkern(11, 5)")))

register(Metric(
    name="average_drop", family="faithfulness",
    description="Average Drop % / Increase in Confidence % (Grad-CAM++) of image ⊙ heatmap",
    function=f"{_FAITH}:average_drop_increase", inputs=_SCORED,
    options={"protocol": "grad-cam++"}, values=("drop", "increase"),
    columns={"average_drop": "drop", "increase_in_confidence": "increase"},
    lower_is_better=("average_drop",), needs=("scores",),
    percent=("average_drop", "increase_in_confidence"),
    protocol={"grad-cam++": "Chattopadhay et al. 2018 (the default: the paper's definition): "
                            "{score} on image ⊙ heatmap, drop relative to the image's",
              "xplique": "xplique 2.0.2 AverageDropMetric / AverageIncreaseMetric: {score} "
                         "on image ⊙ |heatmap| scaled to [0, 1], relative drop",
              "pytorch-grad-cam": "pytorch-grad-cam 1.5.7 DropInConfidence / "
                                  "IncreaseInConfidence: {score} on image ⊙ heatmap, "
                                  "absolute drop"}))

register(Metric(
    name="pointing_game", family="faithfulness",
    description="pointing game (Zhang et al. 2016): the maximum lies on the object",
    function=f"{_FAITH}:pointing_game", inputs=("heatmaps", "gt_boxes=boxes"),
    options={"tolerance": 15, "protocol": "tfcaf"},
    config_fields={"tolerance": "pointing_tolerance"},
    values=("hits",), columns={"pointing_game": "hits"}, needs=("boxes",),
    percent=("pointing_game",),
    protocol={"tfcaf": "Zhang et al. 2016 (the default): the first maximum inside a GT box "
                       "± {tolerance} px (a square), a constant map a miss",
              "torchray": "TorchRay PointingGame: the first maximum within an open disc of "
                          "radius {tolerance} px of a GT box pixel",
              "quantus": "Quantus 0.6.0 PointingGame: any tied maximum inside a GT box, no "
                         "tolerance"}))

register(Metric(
    name="mufidelity", family="faithfulness",
    description="MuFidelity (Bhatt et al. 2020): correlation of attribution sums and score "
                "drops over random grid subsets",
    function="tfcaf.metrics.fidelity:mufidelity", inputs=_SCORED,
    options={"grid_size": 9, "subset_percent": 0.2, "nb_samples": 200, "seed": 0,
             "correlation": "spearman"},
    values=("mufidelity",), columns={"mufidelity": "mufidelity"}, needs=("scores",),
    protocol="xplique 2.0.2 MuFidelity: {nb_samples} random subsets of a {grid_size} × "
             "{grid_size} grid ({subset_percent} of cells) set to the substrate, {score}, "
             "{correlation} correlation; higher is better"))

register(Metric(
    name="road", family="faithfulness",
    description="ROAD (Rong et al. 2022): score change as pixels are imputed, most / least "
                "relevant first",
    function="tfcaf.metrics.remove_and_debias:road",
    inputs=tuple(i for i in _SCORED if i != "substrate"),
    # 1% of the [0, 255] range (the reference's 0.01 is in its normalised
    # input units: about 0.58 pixel levels under ImageNet normalisation).
    options={"percentiles": (10, 20, 30, 40, 50, 60, 70, 80, 90), "order": "combined",
             "noise": 2.55, "seed": 0},
    values=("road", "morf", "lerf"), columns={"road": "road", "road_morf": "morf",
                                               "road_lerf": "lerf"},
    lower_is_better=("road_morf",), needs=("scores",),
    protocol="pytorch-grad-cam 1.5.7 ROADCombined = (LeRF − MoRF) / 2 at percentiles "
             "{percentiles}, noisy linear imputation σ = {noise} pixel levels, {score}; "
             "MoRF lower, LeRF and the combination higher are better"))

register(Metric(
    name="faithfulness_correlation", family="faithfulness",
    description="Faithfulness Correlation (Bhatt et al. 2020): Pearson of attribution sums "
                "and score drops over random subsets",
    function="tfcaf.metrics.correlation:faithfulness_correlation", inputs=_SCORED,
    options={"nb_runs": 100, "subset_size": 224, "softmax": True, "seed": 0},
    values=("faithfulness_correlation",),
    columns={"faithfulness_correlation": "faithfulness_correlation"}, needs=("scores",),
    protocol="Quantus 0.6.0 FaithfulnessCorrelation: {nb_runs} random subsets of "
             "{subset_size} input values set to the substrate, {score}"))

register(Metric(
    name="stability", family="robustness",
    description="Average Sensitivity (Yeh et al. 2019): change of the map under small "
                "uniform input noise",
    function="tfcaf.metrics.sensitivity:stability",
    inputs=("explain", "images", "targets", "batch_size"),
    # 5% of the [0, 255] range; 10 copies, as every copy is a whole explanation.
    options={"lower_bound": 12.75, "nb_samples": 10, "norm": "fro", "reduce": "mean",
             "seed": 0},
    values=("stability",), columns={"stability": "stability"},
    lower_is_better=("stability",), needs=("explain",),
    protocol="Quantus 0.6.0 AvgSensitivity (reduce=mean) / MaxSensitivity (max), here "
             "{reduce}: ‖E(x + u) − E(x)‖ / ‖E(x)‖ "
             "({norm}), u uniform in ±{lower_bound} pixel levels, {nb_samples} copies, "
             "heatmaps in [0, 1]; lower is better"))

register(Metric(
    name="sparseness", family="complexity",
    description="Sparseness (Chalasani et al. 2020): Gini index of the map",
    function="tfcaf.metrics.map_complexity:sparseness", inputs=("heatmaps",),
    values=("sparseness",), columns={"sparseness": "sparseness"},
    protocol="Quantus 0.6.0 Sparseness: Gini index of |heatmap| (normalised); higher is "
             "more concentrated"))

register(Metric(
    name="complexity", family="complexity",
    description="Complexity (Bhatt et al. 2020): entropy of the map's share per pixel",
    function="tfcaf.metrics.map_complexity:complexity", inputs=("heatmaps",),
    values=("complexity",), columns={"complexity": "complexity"},
    lower_is_better=("complexity",),
    protocol="Quantus 0.6.0 Complexity: entropy of |heatmap| / Σ|heatmap| in nats; lower "
             "is simpler"))

register(Metric(
    name="sanity", family="sanity", scope="model",
    description="model-randomisation sanity check (Adebayo et al. 2018)",
    function="tfcaf.metrics.randomization:map_similarity", needs=("keras_model",),
    options={"sanity_images": 16, "sanity_stages": 6, "sanity_cascading": True, "seed": 0},
    protocol="weights re-drawn from their initializers from the output down; Spearman "
             "correlation of the absolute maps with the trained model's"))
