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


import pytest  # noqa: E402


def _weights_and_folder(tmp_path):
    """A regnet_keras weights file of the tiny design of TINY_DESIGN_FLAGS, an image folder and
    the tools.train flags of a one-step run on it."""
    import regnet_keras
    from regnet_keras.design_space import RegNetConfig
    from tests.training_helpers import write_image_folder
    tiny_file = str(tmp_path / "tiny.h5")
    regnet_keras.save_weights(regnet_keras.RegNet(
        RegNetConfig(w0=8, wa=8, wm=2, depth=4, group_width=8), input_shape=(32, 32, 3),
        classes=3), tiny_file)
    folder = write_image_folder(tmp_path / "images", per_class=6)
    return tiny_file, ["--dataset", "folder", "--data_dir", folder, "--image_size", "32",
                       "--batch_size", "8", "--epochs", "1", "--max_steps", "1",
                       "--evaluate=false", "--image_cache", str(tmp_path / "cache")]


def test_weights_accept_the_design_they_carry_by_name_and_train_refuses_another(tmp_path):
    import sys

    import regnet_keras
    from regnet_keras.training import pretrained as pretrained_lib
    from tests.training_helpers import run
    from tools import cli
    # The zoo name of the design W carries is accepted (the road of a user who names both).
    zoo_file = str(tmp_path / "regnetx002.h5")
    regnet_keras.save_weights(regnet_keras.RegNetX002(input_shape=(32, 32, 3), classes=3),
                              zoo_file)
    assert pretrained_lib.resolve(zoo_file, model="RegNetX002").model.to_anynet() == \
        regnet_keras.get_config("RegNetX002").to_anynet()
    tiny_file, common = _weights_and_folder(tmp_path)
    contradicted = run([sys.executable, "-m", "tools.train", "--weights", tiny_file,
                        "--model", "RegNetX002", "--model_dir", str(tmp_path / "refused"),
                        *common])
    assert contradicted.returncode == cli.USAGE_EXIT_STATUS
    lines = contradicted.stderr.strip().splitlines()
    assert len(lines) == 1 and "carries its own design, which is not 'RegNetX002'" in lines[0]
    assert not (tmp_path / "refused" / "run.json").exists()


@pytest.mark.slow
def test_train_runs_with_weights_and_the_same_design_given_by_flags(tmp_path):
    import sys

    from tests.training_helpers import TINY_DESIGN_FLAGS, run
    tiny_file, common = _weights_and_folder(tmp_path)
    agreed = run([sys.executable, "-m", "tools.train", "--weights", tiny_file,
                  *TINY_DESIGN_FLAGS, "--model_dir", str(tmp_path / "agreed"), *common])
    assert agreed.returncode == 0, agreed.stderr[-3000:]
    assert "optimizer steps: 1" in agreed.stdout and "image cache" in agreed.stdout


def test_qat_prints_the_progress_lines_of_train(capsys):
    import keras
    from regnet_keras.training.loop import Progress
    from regnet_keras.training.progress_callback import progress_callback

    class NotATerminal:
        def __init__(self):
            self.lines = []

        def write(self, text):
            self.lines.append(text)

        def flush(self):
            pass

        def isatty(self):
            return False

    stream = NotATerminal()
    progress = Progress(total_steps=6, start_step=0, steps_per_epoch=3, log_every=2,
                        stream=stream)
    for epoch in range(2):
        callback = progress_callback(keras, progress, epoch, 2, 3, lambda step: 0.1 / step)
        callback.on_epoch_begin(0)
        for batch in range(3):
            callback.on_train_batch_end(batch, {"loss": 1.5 - epoch, "top1": 0.25 * epoch})
    lines = [line for line in "".join(stream.lines).splitlines() if line]
    assert [line.split(" loss")[0] for line in lines] == [
        "step 2/6 epoch 1", "step 4/6 epoch 2", "step 6/6 epoch 2"]
    assert "loss 0.5000 top1 0.2500 lr 0.02500" in lines[1]
    assert "ms/step" in lines[2] and "eta 0:00:00" in lines[2]
