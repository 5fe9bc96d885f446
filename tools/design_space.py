"""Design-space exploration as the paper does it: sample, train briefly, compare EDFs; then pick
the most accurate network under a measured latency budget.

    python -m tools.design_space sample  --sweep_dir runs/sweep --spaces RegNetX,AnyNetXA \\
        --count 32 --flops 3.5,4.5 --image_size 32 --references RegNetX002
    python -m tools.design_space train   --sweep_dir runs/sweep --epochs 1
    python -m tools.design_space measure --sweep_dir runs/sweep --threads 2
    python -m tools.design_space analyze --sweep_dir runs/sweep
    python -m tools.design_space pareto  --sweep_dir runs/sweep          # budget: the reference's
    python -m tools.design_space fit --stage_widths 48,104,208,440 --stage_depths 1,3,6,6

Every command resumes: `train` skips finished members and continues a killed member from its
checkpoint; `measure` skips timed members. `measure --export_dir DIR` also writes each member's
.tflite as DIR/ID.tflite; time them on a phone and pass the results as `--latency_table
phone.csv` (columns id, latency_ms) to analyze and pareto.
"""

import json
import os

from absl import app, flags, logging

from regnet_keras.training import data as data_lib
from tools import backend as tool_backend

FLAGS = flags.FLAGS
COMMANDS = ("sample", "train", "measure", "analyze", "pareto", "fit")

flags.DEFINE_string("sweep_dir", None, "The sweep's directory (every command but fit).")
# sample
flags.DEFINE_list("spaces", ["RegNetX", "AnyNetXA"], "sample: named design spaces (AnyNetXA.."
                  "AnyNetXE, RegNet, RegNetX, RegNetY). pareto, when given: choose only among "
                  "members of these spaces.")
flags.DEFINE_string("space_file", None, "sample: a JSON file describing a space of your own "
                    "(regnet_keras.design.sampling.DesignSpace fields, ranges as [low, high]); "
                    "sampled in addition to --spaces.")
flags.DEFINE_integer("count", 32, "sample: members per space.")
flags.DEFINE_integer("seed", 0, "sample: sampling seed; train: initialisation, data order and "
                     "subset seed.")
flags.DEFINE_integer("image_size", 32, "sample: resolution at which the budget is counted and "
                     "the members are trained and timed.")
flags.DEFINE_integer("num_classes", 10, "sample: classes of the classifier (10: Fashion-MNIST).")
flags.DEFINE_list("flops", None, "sample: MIN,MAX multiply-adds in millions at --image_size.")
flags.DEFINE_list("params", None, "sample: MIN,MAX parameters in millions.")
flags.DEFINE_list("activations", None, "sample: MIN,MAX activations in millions.")
flags.DEFINE_list("latency_ms", None, "sample: MIN,MAX measured LiteRT float32 latency "
                  "(--threads); each candidate within the other budgets is converted and timed.")
flags.DEFINE_list("references", ["RegNetX002"], "sample: zoo models added to the population "
                  "as members zoo-<name>, to compare against.")
# train
flags.DEFINE_string("dataset", data_lib.DEFAULT_DATASET, "train: dataset (as tools.train).")
flags.DEFINE_string("data_dir", None, "train: where the data is (as tools.train).")
flags.DEFINE_integer("epochs", 1, "train: epochs per member.")
flags.DEFINE_integer("batch_size", 128, "train: global batch size.")
flags.DEFINE_integer("train_examples", None, "train: train on this fixed random subset of the "
                     "training split (default: all of it).")
flags.DEFINE_float("lr", None, "train: peak learning rate (default 0.1 per 128 images).")
flags.DEFINE_float("warmup_epochs", 0.3, "train: linear warmup epochs.")
flags.DEFINE_float("label_smoothing", 0.1, "train: label smoothing.")
flags.DEFINE_float("min_crop_area", 1.0, "train: random-resized crop's smallest area (1.0: "
                   "flips only).")
flags.DEFINE_list("members", None, "train, measure: only these member ids.")
# measure
flags.DEFINE_integer("threads", 2, "measure: LiteRT threads.")
flags.DEFINE_integer("runs", 50, "measure: timed runs per member (after --warmup).")
flags.DEFINE_integer("warmup", 10, "measure: untimed runs first.")
flags.DEFINE_string("export_dir", None, "measure: also write each member's .tflite here.")
# analyze, pareto
flags.DEFINE_string("latency_table", None, "analyze, pareto: latencies measured elsewhere (CSV "
                    "with columns id, latency_ms) instead of the sweep's own.")
flags.DEFINE_float("latency_budget_ms", None, "pareto: latency budget. Default: the reference "
                   "member's latency.")
flags.DEFINE_string("reference", None, "pareto: the member to beat. Default: the first zoo "
                    "member of the population.")
# fit
flags.DEFINE_list("stage_widths", None, "fit: the AnyNet's stage widths.")
flags.DEFINE_list("stage_depths", None, "fit: the AnyNet's stage depths.")


def _range(name, scale=1e6):
    values = getattr(FLAGS, name)
    if values is None:
        return None
    try:
        low, high = (float(v) * scale for v in values)
    except ValueError:
        low = high = None
    if low is None or len(values) != 2 or not 0 <= low <= high:
        raise app.UsageError(f"--{name}={','.join(values)} is invalid: give MIN,MAX with "
                             "0 <= MIN <= MAX.")
    return (low, high)


def _spaces():
    from regnet_keras.design import sampling as design_sampling
    spaces = [design_sampling.get_space(name) for name in FLAGS.spaces]
    if FLAGS.space_file:
        with open(FLAGS.space_file) as file:
            spaces.append(design_sampling.DesignSpace.from_dict(json.load(file)))
    return spaces


def sample():
    from regnet_keras.design import sampling as design_sampling, sweep
    from regnet_keras.lite import export, latency
    budget = design_sampling.Budget(FLAGS.image_size, FLAGS.num_classes, _range("flops"),
                                    _range("params"), _range("activations"))
    accept = None
    latency_range = _range("latency_ms", scale=1.0)
    if latency_range:
        def accept(member):
            content = export.convert(sweep.build_for_inference(member.design, budget), "float32")
            median = latency.measure(content, FLAGS.threads, FLAGS.runs, FLAGS.warmup).median_ms
            return latency_range[0] <= median <= latency_range[1]
    members = sweep.create(FLAGS.sweep_dir, _spaces(), FLAGS.count, budget, FLAGS.seed,
                           FLAGS.references, accept=accept)
    print(f"{len(members)} members in {os.path.join(FLAGS.sweep_dir, sweep.POPULATION_FILE)}")


def _recipe():
    from regnet_keras.design import sweep
    return sweep.Recipe(dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, epochs=FLAGS.epochs,
                        batch_size=FLAGS.batch_size, train_examples=FLAGS.train_examples,
                        lr=FLAGS.lr, warmup_epochs=FLAGS.warmup_epochs,
                        label_smoothing=FLAGS.label_smoothing,
                        min_crop_area=FLAGS.min_crop_area, seed=FLAGS.seed)


def _write_results():
    from regnet_keras.design import sweep
    rows = sweep.results(FLAGS.sweep_dir, FLAGS.latency_table)
    csv_path, _ = sweep.write_results(FLAGS.sweep_dir, rows)
    trained = sum(row["top1"] is not None for row in rows)
    timed = sum(row["latency_ms"] is not None for row in rows)
    print(f"results: {csv_path} ({len(rows)} members, {trained} trained, {timed} timed)")
    return rows


def train():
    from regnet_keras.design import sweep
    ran = sweep.train(FLAGS.sweep_dir, _recipe(), FLAGS.members)
    print(f"trained {ran} members")
    _write_results()


def measure():
    from regnet_keras.design import sweep
    sweep.measure_latency(FLAGS.sweep_dir, FLAGS.threads, FLAGS.runs, FLAGS.warmup,
                          FLAGS.members, FLAGS.export_dir)
    _write_results()


def analyze():
    from regnet_keras.design import analysis
    from regnet_keras.design import plots
    from regnet_keras.design import sweep
    rows = [row for row in _write_results() if row["error"] is not None]
    if not rows:
        raise app.UsageError(f"no member of {FLAGS.sweep_dir} has finished training: run "
                             "`train` first.")
    out = os.path.join(FLAGS.sweep_dir, "analysis")
    os.makedirs(out, exist_ok=True)
    designs = {member.id: member.design for member in sweep.load(FLAGS.sweep_dir)}
    fits = {}
    for row in rows:
        fits[row["id"]] = analysis.fit_quantized_linear(analysis.block_widths_of(designs[row["id"]]))
        row["e_fit"] = round(fits[row["id"]].e_fit, 4)
    by_space = {}
    for row in rows:
        by_space.setdefault(row["space"], []).append(row["error"])
    summary = {"spaces": {}, "figures": {}}
    print(f"{'space':<10} {'n':>3} {'min err':>8} {'median':>8} {'mean':>8}")
    for space, errors in by_space.items():
        summary["spaces"][space] = {"n": len(errors), "min": min(errors),
                                    "median": float(analysis.np.median(errors)),
                                    "mean": float(analysis.np.mean(errors))}
        s = summary["spaces"][space]
        print(f"{space:<10} {s['n']:>3} {s['min']:>8.2f} {s['median']:>8.2f} {s['mean']:>8.2f}")
    sampled = {space: errors for space, errors in by_space.items()
               if space != sweep.REFERENCE_SPACE}
    budget = sweep.budget_of(FLAGS.sweep_dir)
    title = f"error EDF, {budget.resolution}px" + (
        f", {budget.flops[0] / 1e6:.2f}-{budget.flops[1] / 1e6:.2f} MF" if budget.flops else "")
    plots.plot_edfs(sampled, os.path.join(out, "edf.png"), title)
    figures = {"complexity.png": ([("flops", True), ("params", True), ("activations", True)],
                                  rows),
               "regnet_params.png": ([("depth", False), ("w0", True), ("wa", True),
                                      ("wm", False), ("group_width", True)],
                                     [r for r in rows if r.get("w0") is not None]),
               "anynet_params.png": ([("depth", True), ("max_width", True),
                                      ("group_width", True), ("bottleneck_ratio", True),
                                      ("e_fit", False)],
                                     [r for r in rows if r.get("w0") is None
                                      and r["space"] != sweep.REFERENCE_SPACE])}
    for name, (parameters, subset) in figures.items():
        if len(subset) >= 4:
            summary["figures"][name] = plots.plot_parameter_trends(
                subset, parameters, os.path.join(out, name), f"error vs design ({name[:-4]})")
    best_anynets = sorted((r for r in rows if r.get("w0") is None
                           and r["space"] != sweep.REFERENCE_SPACE), key=lambda r: r["error"])[:5]
    summary["quantized_linear_fits_of_best_anynets"] = [
        {"id": r["id"], "error": r["error"], **{k: getattr(fits[r["id"]], k) for k in
                                                ("w0", "wa", "wm", "depth", "e_fit",
                                                 "observed", "predicted")}}
        for r in best_anynets]
    for fit in summary["quantized_linear_fits_of_best_anynets"]:
        print(f"{fit['id']} (error {fit['error']:.2f}): widths {fit['observed']} fit by w0="
              f"{fit['w0']} wa={fit['wa']} wm={fit['wm']} with e_fit {fit['e_fit']:.3f}")
    with open(os.path.join(out, "analysis.json"), "w") as file:
        json.dump(summary, file, indent=2)
    print(f"figures and analysis.json in {out}")


def pareto():
    from regnet_keras.design import analysis
    from regnet_keras.design import plots
    from regnet_keras.design import sweep
    rows = [row for row in _write_results()
            if row["top1"] is not None and row["latency_ms"] is not None]
    if not rows:
        raise app.UsageError(f"no member of {FLAGS.sweep_dir} is both trained and timed: run "
                             "`train` and `measure` (or pass --latency_table).")
    reference = None
    reference_id = FLAGS.reference or next(
        (row["id"] for row in rows if row["space"] == sweep.REFERENCE_SPACE), None)
    if reference_id is not None:
        reference = next((row for row in rows if row["id"] == reference_id), None)
        if reference is None:
            raise app.UsageError(f"--reference={reference_id} is not a trained and timed member.")
    budget_ms = FLAGS.latency_budget_ms or (reference and reference["latency_ms"])
    if budget_ms is None:
        raise app.UsageError("give --latency_budget_ms (the population has no zoo reference).")
    candidates = [row for row in rows if reference is None or row["id"] != reference["id"]]
    if FLAGS["spaces"].present:  # e.g. --spaces RegNetX: pick a RegNet, not an AnyNet
        candidates = [row for row in candidates if row["space"] in FLAGS.spaces]
        if not candidates:
            raise app.UsageError(f"no trained and timed member of {FLAGS.sweep_dir} belongs "
                                 f"to --spaces {','.join(FLAGS.spaces)}.")
    latencies = [row["latency_ms"] for row in candidates]
    accuracies = [row["top1"] for row in candidates]
    try:
        chosen = candidates[analysis.select_under_latency(latencies, accuracies, budget_ms)]
    except ValueError as error:
        raise app.UsageError(str(error))
    front = analysis.pareto_front(latencies, accuracies)
    plot_path = os.path.join(FLAGS.sweep_dir, "analysis", "pareto.png")
    os.makedirs(os.path.dirname(plot_path), exist_ok=True)
    plots.plot_pareto(candidates, front, candidates.index(chosen), reference, plot_path,
                      budget_ms)
    design = {member.id: member.design for member in sweep.load(FLAGS.sweep_dir)}[chosen["id"]]
    print(f"{'member':<22} {'MF':>6} {'params M':>8} {'latency ms':>10} {'top-1':>7}")
    for row in ([reference] if reference else []) + [chosen]:
        print(f"{row['id']:<22} {row['flops'] / 1e6:>6.2f} {row['params'] / 1e6:>8.3f} "
              f"{row['latency_ms']:>10.3f} {100 * row['top1']:>7.2f}")
    flags_line = sweep.train_flags(design)
    print(f"selected {chosen['id']} (budget {budget_ms:.3f} ms): {design}")
    print(f"train it: python -m tools.train {flags_line} --image_size "
          f"{sweep.budget_of(FLAGS.sweep_dir).resolution}")
    selection = {"budget_ms": budget_ms, "selected": chosen, "reference": reference,
                 "design": design.to_dict(), "train_flags": flags_line,
                 "pareto_front": [candidates[i]["id"] for i in front]}
    with open(os.path.join(FLAGS.sweep_dir, "selection.json"), "w") as file:
        json.dump(selection, file, indent=2)
    print(f"selection.json and {plot_path} written")


def fit():
    from regnet_keras.design import analysis
    if not FLAGS.stage_widths or not FLAGS.stage_depths or \
            len(FLAGS.stage_widths) != len(FLAGS.stage_depths):
        raise app.UsageError("fit needs --stage_widths and --stage_depths, one entry per stage.")
    widths = analysis.np.repeat([int(w) for w in FLAGS.stage_widths],
                                [int(d) for d in FLAGS.stage_depths])
    result = analysis.fit_quantized_linear(widths)
    print(f"w0={result.w0} wa={result.wa} wm={result.wm} depth={result.depth} "
          f"e_fit={result.e_fit:.4f}")
    print(f"observed  {list(result.observed)}")
    print(f"predicted {list(result.predicted)}")


def main(argv):
    tool_backend.exit_unless_tensorflow("tools.design_space")
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"give one command: {' | '.join(COMMANDS)} (see the module's "
                             "docstring and --helpfull).")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's per-save INFO lines drown progress
    if argv[1] != "fit" and not FLAGS.sweep_dir:
        raise app.UsageError(f"{argv[1]} needs --sweep_dir.")
    from regnet_keras.design import sampling as design_sampling, sweep
    try:
        globals()[argv[1]]()
    except (ValueError, data_lib.DataError, sweep.SweepError,
            design_sampling.SamplingError) as error:
        raise app.UsageError(str(error))


if __name__ == "__main__":
    app.run(main)
