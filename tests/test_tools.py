import subprocess

from tests.conftest import REPO, run_python
from tests.zoo_table import ZOO_TABLE


def test_describe_prints_stages_and_totals():
    output = run_python(["-m", "tools.describe", "RegNetY016", "--resolution", "224"]).stdout
    name, depths, widths, params, flops, activations = next(
        row for row in ZOO_TABLE if row[0] == "RegNetY016")
    total = next(line for line in output.splitlines() if line.strip().startswith("total"))
    assert f"{flops:,}" in total and f"{params:,}" in total and f"{activations:,}" in total
    for index, (width, depth) in enumerate(zip(widths, depths), start=1):
        row = next(line for line in output.splitlines() if line.strip().startswith(
            f"stage {index}")).split()
        assert row[2:4] == [str(width), str(depth)]
    assert "7x7" in output


def test_describe_lists_the_zoo():
    output = run_python(["-m", "tools.describe", "--list"]).stdout
    for name, _, _, params, flops, _ in ZOO_TABLE:
        line = next(line for line in output.splitlines() if line.startswith(name))
        assert f"{params:,}" in line and f"{flops:,}" in line


def test_describe_rejects_unknown_models_with_the_valid_names():
    result = subprocess.run(["python3", "-m", "tools.describe", "RegNetZ001"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "unknown model name" in result.stderr and "RegNetY320" in result.stderr
