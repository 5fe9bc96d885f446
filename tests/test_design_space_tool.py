"""tools.design_space end to end on tiny data: sample, train (resumably), measure, analyze, pareto."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_python
from tests.training_helpers import write_tiny_fashion_mnist

# A space of tiny RegNets (a few thousand multiply-adds at 32x32), so members train in seconds.
TINY_SPACE = {"name": "TinyRegNet", "family": "regnet", "depth": [2, 4], "w0": [8, 16],
              "wa": [4.0, 16.0], "wm": [2.0, 3.0], "group_width": [8, 8], "min_stages": 1,
              "max_stages": 4}


def tool(*args, **kwargs):
    return run_python(["-m", "tools.design_space", *args], **kwargs)


def tool_failure(*args):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "tools.design_space", *args], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    return result.stderr


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    space_file = root / "space.json"
    space_file.write_text(json.dumps(TINY_SPACE))
    data = write_tiny_fashion_mnist(str(root / "data"), train=256, test=64)
    sweep_dir = str(root / "sweep")
    sample = ["sample", f"--sweep_dir={sweep_dir}", "--spaces=", f"--space_file={space_file}",
              "--count=3", "--references="]
    tool(*sample)
    train = ["train", f"--sweep_dir={sweep_dir}", "--dataset=fashion_mnist",
             f"--data_dir={data}", "--batch_size=64", "--epochs=1", "--train_examples=192"]
    first = tool(*train, "--members=tinyregnet-000")
    rest = tool(*train)
    tool("measure", f"--sweep_dir={sweep_dir}", "--runs=3", "--warmup=1",
         f"--export_dir={root / 'tflite'}")
    return dict(root=root, dir=sweep_dir, sample=sample, train=train, first=first, rest=rest)


def read_results(sweep_dir):
    with open(os.path.join(sweep_dir, "results.csv"), newline="") as file:
        return list(csv.DictReader(file))


def test_members_train_once_and_the_table_holds_cost_latency_and_accuracy(sweep):
    assert "trained 1 members" in sweep["first"].stdout
    assert "trained 2 members" in sweep["rest"].stdout  # the finished member was skipped
    rows = read_results(sweep["dir"])
    assert [row["id"] for row in rows] == [f"tinyregnet-00{i}" for i in range(3)]
    for row in rows:
        assert float(row["top1"]) >= 0 and float(row["latency_ms"]) > 0
        assert int(row["flops"]) > 0 and int(row["params"]) > 0 and row["w0"]
        run = json.load(open(os.path.join(sweep["dir"], "members", row["id"], "run.json")))
        assert run["status"] == "finished" and run["train_examples"] == 192
    assert sorted(os.listdir(sweep["root"] / "tflite")) == [
        f"tinyregnet-00{i}.tflite" for i in range(3)]
    again = tool(*sweep["train"])
    assert "trained 0 members" in again.stdout


def test_analyze_writes_the_edf_and_fits(sweep):
    result = tool("analyze", f"--sweep_dir={sweep['dir']}")
    out = os.path.join(sweep["dir"], "analysis")
    assert os.path.getsize(os.path.join(out, "edf.png")) > 5000
    summary = json.load(open(os.path.join(out, "analysis.json")))
    assert summary["spaces"]["TinyRegNet"]["n"] == 3
    assert "TinyRegNet" in result.stdout


def test_pareto_selects_within_the_budget_and_its_flags_rebuild_the_design(sweep):
    rows = read_results(sweep["dir"])
    fastest = min(float(row["latency_ms"]) for row in rows)
    tool("pareto", f"--sweep_dir={sweep['dir']}", f"--latency_budget_ms={fastest * 100}")
    selection = json.load(open(os.path.join(sweep["dir"], "selection.json")))
    best = max(float(row["top1"]) for row in rows)
    assert float(selection["selected"]["top1"]) == pytest.approx(best)
    # The printed tools.train flags build exactly the selected design.
    check = ("import sys; from absl import flags; import tools.train as t; "
             "flags.FLAGS(['x'] + sys.argv[1:]); c = t.train_config_from_flags(); "
             "print(c.model.to_dict())")
    printed = run_python(["-c", check, *selection["train_flags"].split()]).stdout
    assert printed.strip() == str(selection["design"])
    assert os.path.exists(os.path.join(sweep["dir"], "analysis", "pareto.png"))
    # --spaces restricts the choice to those spaces' members.
    tool("pareto", f"--sweep_dir={sweep['dir']}", f"--latency_budget_ms={fastest * 100}",
         "--spaces=TinyRegNet")
    assert json.load(open(os.path.join(sweep["dir"], "selection.json")))["selected"]["id"] == \
        selection["selected"]["id"]
    error = tool_failure("pareto", f"--sweep_dir={sweep['dir']}", "--spaces=AnyNetXA",
                         f"--latency_budget_ms={fastest * 100}")
    assert "no trained and timed member" in error and "--spaces AnyNetXA" in error


def test_a_phone_latency_table_replaces_the_measured_one(sweep):
    table = sweep["root"] / "phone.csv"
    rows = read_results(sweep["dir"])
    # The slowest member here is the fastest on the "phone", so it is the only one in budget.
    slowest = max(rows, key=lambda row: float(row["latency_ms"]))["id"]
    table.write_text("id,latency_ms\n" + "".join(
        f"{row['id']},{1.0 if row['id'] == slowest else 9.0}\n" for row in rows))
    tool("pareto", f"--sweep_dir={sweep['dir']}", f"--latency_table={table}",
         "--latency_budget_ms=2")
    assert json.load(open(os.path.join(sweep["dir"], "selection.json")))["selected"]["id"] == slowest
    table.write_text("id,latency_ms\ntinyregnet-000,1.0\n")
    error = tool_failure("pareto", f"--sweep_dir={sweep['dir']}", f"--latency_table={table}",
                         "--latency_budget_ms=2")
    assert "has no latency for 2 members: tinyregnet-001, tinyregnet-002" in error


def test_another_population_or_recipe_in_the_same_directory_is_refused(sweep):
    before = open(os.path.join(sweep["dir"], "population.json")).read()
    error = tool_failure(*[a if a != "--count=3" else "--count=4" for a in sweep["sample"]])
    assert "holds another population" in error and "another --sweep_dir" in error
    assert open(os.path.join(sweep["dir"], "population.json")).read() == before
    error = tool_failure(*[a if a != "--epochs=1" else "--epochs=2" for a in sweep["train"]])
    assert "another recipe (epochs: 1 there, 2 now)" in error


def test_bad_commands_and_budgets_are_named(tmp_path):
    assert "give one command: sample | train" in tool_failure(f"--sweep_dir={tmp_path}", "fly")
    assert "--flops=3 is invalid: give MIN,MAX" in tool_failure(
        "sample", f"--sweep_dir={tmp_path}", "--flops=3")
    assert "has no population.json: run" in tool_failure("train", f"--sweep_dir={tmp_path}")
    assert "unknown design space 'AnyNetXQ'" in tool_failure(
        "sample", f"--sweep_dir={tmp_path}", "--spaces=AnyNetXQ")


def test_fit_gives_the_quantized_linear_parameters_of_an_anynet():
    # RegNetX002's stages (paper: w0=24, wa=36.44, wm=2.49, d=13) are fit exactly.
    result = tool("fit", "--stage_widths=24,56,152,368", "--stage_depths=1,1,4,7")
    assert "w0=24 " in result.stdout and "wm=2.49 " in result.stdout
    assert "depth=13 e_fit=0.0000" in result.stdout
    assert "fit needs --stage_widths and --stage_depths" in tool_failure(
        "fit", "--stage_widths=24,56")
