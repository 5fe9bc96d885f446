"""Prints a RegNet's stages and analytic cost, or the zoo.

    python -m tools.describe RegNetY016 [--resolution 224] [--classes 1000]
    python -m tools.describe --list
"""

from absl import app, flags

import regnet_keras
from tools import cli

FLAGS = flags.FLAGS
flags.DEFINE_integer("resolution", 224, "Input height and width in pixels.")
flags.DEFINE_integer("classes", 1000, "Classifier width.")
flags.DEFINE_bool("list", False, "List the zoo models with their params and flops at "
                  "--resolution instead of describing one.")


def _millions(value: int) -> str:
    return f"{value / 1e6:,.2f}M"


def _size(size) -> str:
    return "x".join(map(str, size))


def stage_table(name: str, resolution: int, classes: int) -> str:
    cost = regnet_keras.complexity(name, resolution, num_classes=classes)
    rows = [("part", "width", "depth", "group width", "groups", "stride", "output",
             "flops", "params", "activations")]
    config = regnet_keras.get_config(name)
    rows.append(("stem", config.stem_width, 1, "-", "-", 2, _size(cost.stem_output_size),
                 f"{cost.stem.flops:,}", f"{cost.stem.params:,}", f"{cost.stem.activations:,}"))
    for stage in cost.stages:
        spec = stage.spec
        rows.append((f"stage {stage.index}", spec.width, spec.depth, spec.group_width,
                     spec.groups, spec.stride, _size(stage.output_size),
                     f"{stage.cost.flops:,}", f"{stage.cost.params:,}",
                     f"{stage.cost.activations:,}"))
    rows.append(("head", classes, 1, "-", "-", "-", "", f"{cost.head.flops:,}",
                 f"{cost.head.params:,}", f"{cost.head.activations:,}"))
    rows.append(("total", "", sum(s.spec.depth for s in cost.stages), "", "", "", "",
                 f"{cost.flops:,}", f"{cost.params:,}", f"{cost.activations:,}"))
    title = (f"{regnet_keras.zoo.get_entry(name).name} at {resolution}x{resolution}: {config}\n"
             f"{_millions(cost.flops)} multiply-adds, {_millions(cost.params)} params, "
             f"{_millions(cost.activations)} activations")
    return title + "\n" + format_rows(rows)


def zoo_table(resolution: int, classes: int) -> str:
    rows = [("model", "depths", "widths", "group width", "flops", "params", "activations",
             "paper top-1 err %")]
    for name in regnet_keras.list_models():
        entry = regnet_keras.zoo.get_entry(name)
        anynet = entry.config.to_anynet()
        cost = regnet_keras.complexity(name, resolution, num_classes=classes)
        rows.append((name, ",".join(map(str, anynet.stage_depths)),
                     ",".join(map(str, anynet.stage_widths)), entry.config.group_width,
                     f"{cost.flops:,}", f"{cost.params:,}", f"{cost.activations:,}",
                     entry.paper_top1_error))
    return format_rows(rows)


def format_rows(rows) -> str:
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv):
    if FLAGS.list:
        print(zoo_table(FLAGS.resolution, FLAGS.classes))
        return
    if len(argv) != 2:
        raise app.UsageError("name one model, e.g. `python -m tools.describe RegNetY016`, or "
                             "pass --list. Models: " + ", ".join(regnet_keras.list_models()))
    try:
        print(stage_table(argv[1], FLAGS.resolution, FLAGS.classes))
    except ValueError as error:
        raise app.UsageError(str(error))


if __name__ == "__main__":
    cli.run(main, loads_tensorflow=False)
