"""A sweep: a sampled population of networks in one directory, trained and timed member by member.

    SWEEP_DIR/population.json   the spaces, budget, seed and members (design and analytic cost)
    SWEEP_DIR/recipe.json       how every member is trained (fixed at the first `train`)
    SWEEP_DIR/members/ID/       each member's training run (a tools.train model directory)
    SWEEP_DIR/latency.json      each member's measured LiteRT latency
    SWEEP_DIR/results.csv|json  one row per member: cost, latency, accuracy, design

Every step is resumable: a member whose run finished is not trained again, a member killed
mid-training resumes from its last checkpoint (training.train), a timed member is not timed
again. A sweep directory never silently changes population or recipe.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np

from regnet_keras.design import sampling as design_sampling
from regnet_keras.design_space import AnyNetConfig, RegNetConfig, config_from_dict
from regnet_keras.errors import InputError
from regnet_keras.training import data as data_lib
from regnet_keras.training import run_file

POPULATION_FILE = "population.json"
RECIPE_FILE = "recipe.json"
LATENCY_FILE = "latency.json"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
MEMBERS_DIR = "members"
REFERENCE_SPACE = "zoo"  # members added by name from the zoo, for comparison


class SweepError(InputError, ValueError):
    """The sweep directory or its inputs do not fit the request; nothing was overwritten."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How each member is trained: tools.train's pipeline, briefly, on a fixed data subset."""

    dataset: str = data_lib.DEFAULT_DATASET
    data_dir: str | None = None
    epochs: int = 1
    batch_size: int = 128
    train_examples: int | None = None  # a fixed random subset of the training split
    lr: float | None = None
    warmup_epochs: float = 0.3
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    min_crop_area: float = 1.0  # flips only: brief runs learn little from harder crops
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _write_json(path, values):
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        json.dump(values, file, indent=2)
    os.replace(temporary, path)


def _read_json(path):
    with open(path) as file:
        return json.load(file)


# --------------------------------------------------------------------------------------------
# The population


def create(sweep_dir: str, spaces, count: int, budget: design_sampling.Budget, seed: int = 0,
           references=(), accept=None, log=print) -> list[design_sampling.Member]:
    """Samples `count` members of each space (plus the named zoo models) into sweep_dir.

    Sampling is deterministic, so running it again with the same arguments is a no-op; other
    arguments on an existing sweep are refused.
    """
    from regnet_keras import complexity, zoo
    spec = {"spaces": [space.to_dict() for space in spaces], "count": count,
            "budget": dataclasses.asdict(budget), "seed": seed, "references": list(references)}
    spec = json.loads(json.dumps(spec))
    path = os.path.join(sweep_dir, POPULATION_FILE)
    if os.path.exists(path):
        existing = _read_json(path)
        if {key: existing.get(key) for key in spec} != spec:
            raise SweepError(f"{sweep_dir} holds another population (sampled with other "
                             "spaces, count, budget, seed or references); pass another "
                             "--sweep_dir, or delete it to start over.")
        log(f"{path} already holds this population")
        return load(sweep_dir)
    members = []
    for space in spaces:
        drawn = design_sampling.sample(space, count, budget, seed, accept=accept)
        log(f"{space.name}: {len(drawn)} members")
        members.extend(drawn)
    for name in references:
        design = zoo.get_config(name)
        cost = complexity(design, resolution=budget.resolution,
                          num_classes=budget.num_classes).total
        members.append(design_sampling.Member(f"{REFERENCE_SPACE}-{name.lower()}",
                                              REFERENCE_SPACE, design, cost.flops, cost.params,
                                              cost.activations))
    os.makedirs(sweep_dir, exist_ok=True)
    _write_json(path, {**spec, "members": [member.to_dict() for member in members]})
    return members


def read_spec(sweep_dir: str) -> dict:
    path = os.path.join(sweep_dir, POPULATION_FILE)
    if not os.path.exists(path):
        raise SweepError(f"{sweep_dir} has no {POPULATION_FILE}: run "
                         f"`python -m tools.design_space sample --sweep_dir {sweep_dir}` first.")
    return _read_json(path)


def load(sweep_dir: str) -> list[design_sampling.Member]:
    return [design_sampling.Member(m["id"], m["space"], config_from_dict(m["design"]),
                                   m["flops"], m["params"], m["activations"])
            for m in read_spec(sweep_dir)["members"]]


def budget_of(sweep_dir: str) -> design_sampling.Budget:
    values = read_spec(sweep_dir)["budget"]
    return design_sampling.Budget(**{key: tuple(value) if isinstance(value, list) else value
                                     for key, value in values.items()})


# --------------------------------------------------------------------------------------------
# Training


def fix_recipe(sweep_dir: str, recipe: Recipe) -> Recipe:
    """Records the recipe at the first call; later calls must bring the same one."""
    path = os.path.join(sweep_dir, RECIPE_FILE)
    wanted = json.loads(json.dumps(recipe.to_dict()))
    if os.path.exists(path):
        existing = _read_json(path)
        if existing != wanted:
            differences = [f"{key}: {existing.get(key)!r} there, {wanted.get(key)!r} now"
                           for key in wanted if existing.get(key) != wanted.get(key)]
            raise SweepError(f"{sweep_dir} trains its members with another recipe ("
                             + "; ".join(differences) + "): pass the same flags to continue.")
    else:
        _write_json(path, wanted)
    return recipe


def training_source(recipe: Recipe) -> data_lib.Source:
    """The dataset, its training split cut to a fixed random subset when the recipe says so."""
    source = data_lib.open_source(recipe.dataset, recipe.data_dir)
    count = recipe.train_examples
    if count is None or count >= source.train.num_examples:
        return source
    split = source.train
    if split.tfds_split is not None:
        raise SweepError("train_examples needs a dataset read into memory or from files "
                         f"(fashion_mnist, folder); {recipe.dataset} streams from "
                         "tensorflow-datasets: leave train_examples unset.")
    keep = np.sort(np.random.default_rng(recipe.seed).permutation(split.num_examples)[:count])
    subset = data_lib.Split(
        count, images=None if split.images is None else split.images[keep],
        labels=split.labels[keep],
        paths=None if split.paths is None else tuple(split.paths[i] for i in keep))
    return dataclasses.replace(source, train=subset,
                               description=f"{source.description}, {count} training examples")


def train_config(sweep_dir: str, member: design_sampling.Member, recipe: Recipe):
    from regnet_keras.training.loop import TrainConfig
    return TrainConfig(
        model=member.design, dataset=recipe.dataset, data_dir=recipe.data_dir,
        image_size=budget_of(sweep_dir).resolution, batch_size=recipe.batch_size,
        epochs=recipe.epochs, lr=recipe.lr, warmup_epochs=recipe.warmup_epochs,
        weight_decay=recipe.weight_decay, label_smoothing=recipe.label_smoothing,
        augmentation=data_lib.Augmentation(min_crop_area=recipe.min_crop_area,
                                           lighting_std=0.0),
        eval_crop_fraction=1.0, model_dir=member_dir(sweep_dir, member.id), seed=recipe.seed,
        checkpoint_every_steps=50)


def member_dir(sweep_dir: str, member_id: str) -> str:
    return os.path.join(sweep_dir, MEMBERS_DIR, member_id)


def member_run(sweep_dir: str, member_id: str) -> dict | None:
    return run_file.read_run(member_dir(sweep_dir, member_id))


def select(members, ids=None):
    if not ids:
        return list(members)
    known = {member.id: member for member in members}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise SweepError(f"unknown member ids {unknown}: the population has "
                         f"{', '.join(sorted(known))}.")
    return [known[i] for i in ids]


def training_order(members) -> list:
    """References first, then the spaces in turn (one member of each, then the next...), so
    that a sweep analysed before it ends still compares the spaces on equal numbers."""
    by_space = {}
    for member in members:
        by_space.setdefault(member.space, []).append(member)
    ordered = by_space.pop(REFERENCE_SPACE, [])
    queues = list(by_space.values())
    for index in range(max((len(q) for q in queues), default=0)):
        ordered.extend(queue[index] for queue in queues if index < len(queue))
    return ordered


def train(sweep_dir: str, recipe: Recipe, ids=None, log=print) -> int:
    """Trains every member not finished yet (see training_order); returns how many ran."""
    from regnet_keras.keras_backend import get_keras
    from regnet_keras.training import loop as training
    members = training_order(select(load(sweep_dir), ids))
    fix_recipe(sweep_dir, recipe)
    source = training_source(recipe)
    ran = 0
    for index, member in enumerate(members, start=1):
        run = member_run(sweep_dir, member.id)
        if run is not None and run.get("status") == "finished":
            continue
        log(f"[{index}/{len(members)}] {member.id}: {member.flops / 1e6:.2f} MF, "
            f"{member.params / 1e6:.3f} M params")
        training.train(train_config(sweep_dir, member, recipe), source=source,
                       log=lambda line: log(f"  {line}"))
        get_keras().backend.clear_session()  # one process trains them all; free each graph
        ran += 1
    return ran


# --------------------------------------------------------------------------------------------
# Latency


def build_for_inference(design, budget: design_sampling.Budget):
    """The member as deployed: 0-255 RGB in, its normalisation inside, softmax out."""
    import regnet_keras
    return regnet_keras.RegNet(design, classes=budget.num_classes,
                               input_shape=(budget.resolution, budget.resolution, 3),
                               include_preprocessing=True)


def measure_latency(sweep_dir: str, threads: int = 2, runs: int = 50, warmup: int = 10,
                    ids=None, export_dir: str | None = None, log=print) -> dict:
    """Times each member's float32 .tflite on LiteRT (XNNPACK); results go to latency.json.

    Latency does not depend on the weights, so untrained builds are timed and this can run
    before, after or beside training. With export_dir, each .tflite is also written there as
    ID.tflite, to be timed on another device (see load_latency_table).
    """
    import platform
    from regnet_keras.keras_backend import get_keras
    from regnet_keras.lite import export, latency
    budget = budget_of(sweep_dir)
    path = os.path.join(sweep_dir, LATENCY_FILE)
    table = _read_json(path) if os.path.exists(path) else {}
    setting = {"threads": threads, "variant": "float32", "machine": platform.machine(),
               "processor": platform.processor() or platform.machine()}
    if table.get("setting", setting) != setting:
        raise SweepError(f"{path} was measured with {table['setting']}; measure into another "
                         "sweep or delete it to measure again.")
    table["setting"] = setting
    measured = table.setdefault("latency_ms", {})
    for member in select(load(sweep_dir), ids):
        if member.id in measured and export_dir is None:
            continue
        content = export.convert(build_for_inference(member.design, budget), "float32")
        get_keras().backend.clear_session()
        if export_dir:
            os.makedirs(export_dir, exist_ok=True)
            with open(os.path.join(export_dir, f"{member.id}.tflite"), "wb") as file:
                file.write(content)
        if member.id not in measured:
            result = latency.measure(content, threads, runs, warmup)
            measured[member.id] = {"median_ms": round(result.median_ms, 4),
                                   "p90_ms": round(result.p90_ms, 4)}
            log(f"{member.id}: {result.median_ms:.3f} ms (p90 {result.p90_ms:.3f})")
            _write_json(path, table)
    return table


def load_latency_table(path: str, members) -> dict[str, float]:
    """Latencies measured elsewhere (e.g. on a phone, from the exported ID.tflite files): a CSV
    with columns `id` and `latency_ms`, or a latency.json. Every member must have one."""
    if not os.path.exists(path):
        raise SweepError(f"latency table {path!r} does not exist.")
    if path.endswith(".json"):
        table = {key: value["median_ms"] for key, value in _read_json(path)["latency_ms"].items()}
    else:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
        if not rows or not {"id", "latency_ms"} <= set(rows[0]):
            raise SweepError(f"{path}: a latency table is a CSV with the columns id and "
                             "latency_ms (one row per member).")
        table = {row["id"]: float(row["latency_ms"]) for row in rows}
    missing = [member.id for member in members if member.id not in table]
    if missing:
        raise SweepError(f"{path} has no latency for {len(missing)} members: "
                         f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}.")
    return {member.id: table[member.id] for member in members}


# --------------------------------------------------------------------------------------------
# Results


def design_fields(design) -> dict:
    """The design as flat columns: RegNet parameters where they exist, stages always."""
    anynet = design.to_anynet()
    fields = {"block_type": design.block_type, "depth": anynet.depth,
              "stage_widths": "-".join(map(str, anynet.stage_widths)),
              "stage_depths": "-".join(map(str, anynet.stage_depths)),
              "stage_group_widths": "-".join(map(str, anynet.stage_group_widths)),
              # AnyNetXA's stages differ: the largest b and g stand for the network, as in pycls.
              "bottleneck_ratio": round(1.0 / min(anynet.stage_bottlenecks), 4),
              "group_width": max(anynet.stage_group_widths),
              "max_width": max(anynet.stage_widths)}
    if isinstance(design, RegNetConfig):
        fields.update(w0=design.w0, wa=design.wa, wm=design.wm)
    return fields


def results(sweep_dir: str, latency_table: str | None = None) -> list[dict]:
    """One row per member: id, space, cost, latency (if measured), accuracy (if trained)."""
    members = load(sweep_dir)
    if latency_table:
        latencies = load_latency_table(latency_table, members)
    else:
        path = os.path.join(sweep_dir, LATENCY_FILE)
        measured = _read_json(path)["latency_ms"] if os.path.exists(path) else {}
        latencies = {key: value["median_ms"] for key, value in measured.items()}
    rows = []
    for member in members:
        run = member_run(sweep_dir, member.id) or {}
        finished = run.get("status") == "finished"
        rows.append({
            "id": member.id, "space": member.space, "flops": member.flops,
            "params": member.params, "activations": member.activations,
            "latency_ms": latencies.get(member.id),
            "top1": run.get("test_top1") if finished else None,
            "top5": run.get("test_top5") if finished else None,
            "error": round(100 * (1 - run["test_top1"]), 3) if finished else None,
            "train_seconds": run.get("train_seconds_last_session") if finished else None,
            **design_fields(member.design),
            "design": json.dumps(member.design.to_dict()),
        })
    return rows


def write_results(sweep_dir: str, rows) -> tuple[str, str]:
    csv_path = os.path.join(sweep_dir, RESULTS_CSV)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(csv_path + ".tmp", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(csv_path + ".tmp", csv_path)
    json_path = os.path.join(sweep_dir, RESULTS_JSON)
    _write_json(json_path, rows)
    return csv_path, json_path


def train_flags(design) -> str:
    """The tools.train flags that build `design`."""
    if isinstance(design, RegNetConfig):
        flags = [f"--w0={design.w0}", f"--wa={design.wa}", f"--wm={design.wm}",
                 f"--depth={design.depth}", f"--group_width={design.group_width}"]
        if design.bottleneck != 1.0:
            flags.append(f"--bottleneck={design.bottleneck}")
    else:
        assert isinstance(design, AnyNetConfig)
        flags = [f"--stage_widths={','.join(map(str, design.stage_widths))}",
                 f"--stage_depths={','.join(map(str, design.stage_depths))}",
                 f"--stage_group_widths={','.join(map(str, design.stage_group_widths))}",
                 f"--stage_strides={','.join(map(str, design.stage_strides))}"]
        if any(b != 1.0 for b in design.stage_bottlenecks):
            flags.append(f"--stage_bottlenecks={','.join(map(str, design.stage_bottlenecks))}")
    if design.se_ratio:
        flags.append(f"--se_ratio={design.se_ratio}")
    return " ".join(flags)
