"""Runs one fuzz harness under atheris (coverage-guided libFuzzer) in a memory-limited subprocess.

    python3 -m fuzz.runner fuzz_torch_zip --seconds 60 --memory_mb 4096 [--runs N] [--corpus DIR]

A harness is a module `fuzz/fuzz_<reader>.py` with `test_one_input(data: bytes)`, which feeds the
bytes to one reader of user files, and `write_seeds(directory)`, which writes valid and
near-valid files to start from. The property checked: the only exception that escapes the reader
is regnet_keras' InputError, and the process neither crashes nor exceeds its memory. The child
runs with RLIMIT_AS (and libFuzzer's RSS and malloc limits) at --memory_mb, so exhausting memory
is a MemoryError or an out-of-memory report, both findings. A finding's input is saved under
--artifacts (libFuzzer's -artifact_prefix) and the runner exits non-zero.

The modules named in the harness's optional INSTRUMENTED_MODULES (default: regnet_keras) are
instrumented for coverage as they are imported; libFuzzer's `cov:` counts their edges.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import os
import re
import resource
import subprocess
import sys
import tempfile

FUZZ_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(FUZZ_DIR)
DEFAULT_INSTRUMENTED = ("regnet_keras",)
# A single input that takes longer than this is a finding (libFuzzer's -timeout).
INPUT_TIMEOUT_S = 30
# libFuzzer's status lines: "#4096 pulse  cov: 812 ft: 1433 corp: 58/9Kb ... exec/s: 204 rss: 611Mb"
_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?exec/s: (\d+)")
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second")


def harness_names() -> list[str]:
    return sorted(name[:-3] for name in os.listdir(FUZZ_DIR)
                  if name.startswith("fuzz_") and name.endswith(".py"))


def _module_name(harness_name: str) -> str:
    """fuzz/<name>.py, or a dotted module path (the runner's own tests use planted harnesses)."""
    return harness_name if "." in harness_name else f"fuzz.{harness_name}"


def _child(harness_name: str, memory_mb: int, seeds: str, libfuzzer_arguments: list[str]) -> None:
    """Runs inside the limited subprocess: instrument, import, write the seeds, fuzz (seeds
    are written here so that the harness's heavy imports happen once)."""
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import atheris
    module_name = _module_name(harness_name)
    spec = importlib.util.find_spec(module_name)
    instrumented = DEFAULT_INSTRUMENTED
    with open(spec.origin) as source:
        match = re.search(r"^INSTRUMENTED_MODULES\s*=\s*(\(.*?\))", source.read(), re.M | re.S)
    if match:
        instrumented = tuple(ast.literal_eval(match.group(1)))
    for name in instrumented:  # imported before the hook (zipfile, by the interpreter itself)
        if name in sys.modules:
            _instrument_loaded(atheris, sys.modules[name])
    with atheris.instrument_imports(include=list(instrumented) + [module_name]):
        from regnet_keras.errors import InputError
        harness = importlib.import_module(module_name)
    if not os.listdir(seeds):
        harness.write_seeds(seeds)

    def test_one_input(data: bytes) -> None:
        try:
            harness.test_one_input(data)
        except InputError:
            pass  # the expected outcome for a bad file: the library's one-line error

    atheris.Setup([sys.argv[0]] + libfuzzer_arguments, test_one_input)
    atheris.Fuzz()


def _instrument_loaded(atheris, module) -> None:
    """Instruments the functions and methods defined in an already imported module."""
    functions = []
    for value in list(vars(module).values()):
        if inspect.isfunction(value):
            functions.append(value)
        elif inspect.isclass(value):
            functions.extend(item for item in vars(value).values() if inspect.isfunction(item))
    for function in functions:
        if function.__module__ == module.__name__:
            atheris.instrument_func(function)


def summarize(output: str) -> dict:
    """Executions, coverage, features and corpus size from libFuzzer's last status lines."""
    summary = {"executions": 0, "cov": 0, "ft": 0, "corpus": 0, "exec_per_s": 0, "seconds": 0}
    for line in output.splitlines():
        status = _STATUS.match(line)
        if status:
            summary.update(executions=int(status.group(1)), cov=int(status.group(2)),
                           ft=int(status.group(3)), corpus=int(status.group(4)),
                           exec_per_s=int(status.group(5)))
        done = _DONE.match(line)
        if done:
            summary.update(executions=int(done.group(1)), seconds=int(done.group(2)))
    return summary


def run(harness_name: str, seconds: int, memory_mb: int, runs: int | None = None,
        corpus: str | None = None, artifacts: str | None = None, log=None) -> tuple[int, dict]:
    """Fuzzes `harness_name` in a subprocess; returns (exit code, summary). Exit code 0 means
    no finding; a finding's input lies in `artifacts` (summary["artifacts"])."""
    if harness_name not in harness_names() and "." not in harness_name:
        raise SystemExit(f"no harness fuzz/{harness_name}.py; harnesses: {harness_names()}")
    corpus = corpus or tempfile.mkdtemp(prefix=f"{harness_name}_corpus_")
    artifacts = artifacts or os.path.join(corpus, "findings")
    seeds = os.path.join(corpus, "seeds")
    grown = os.path.join(corpus, "grown")
    for directory in (seeds, grown, artifacts):
        os.makedirs(directory, exist_ok=True)
    arguments = [grown, seeds, f"-max_total_time={seconds}", f"-rss_limit_mb={memory_mb}",
                 f"-malloc_limit_mb={memory_mb}", f"-timeout={INPUT_TIMEOUT_S}",
                 f"-artifact_prefix={os.path.join(artifacts, '')}", "-print_final_stats=1"]
    if runs is not None:
        arguments.append(f"-runs={runs}")
    before = set(os.listdir(artifacts))
    command = [sys.executable, "-m", "fuzz.runner", "--child", harness_name,
               "--memory_mb", str(memory_mb), "--seeds", seeds, "--"] + arguments
    environment = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                       TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(command, cwd=REPO, env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    if log is not None:
        log.write(done.stdout)
    summary = summarize(done.stdout)
    summary["artifacts"] = sorted(os.path.join(artifacts, name)
                                  for name in set(os.listdir(artifacts)) - before)
    summary["returncode"] = done.returncode
    if done.returncode != 0:
        summary["output_tail"] = done.stdout[-4000:]
    return (1 if done.returncode or summary["artifacts"] else 0), summary


def summary_line(harness_name: str, code: int, summary: dict) -> str:
    saved = ", ".join(summary["artifacts"]) or "no input saved"
    outcome = "no finding" if code == 0 else f"FINDING (exit {summary['returncode']}): {saved}"
    return (f"{harness_name}: {summary['executions']} executions in {summary['seconds']} s "
            f"({summary['exec_per_s']}/s), cov {summary['cov']}, ft {summary['ft']}, "
            f"corpus {summary['corpus']}; {outcome}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        separator = argv.index("--")
        child = argparse.ArgumentParser()
        child.add_argument("harness")
        child.add_argument("--memory_mb", type=int, required=True)
        child.add_argument("--seeds", required=True)
        options = child.parse_args(argv[1:separator])
        _child(options.harness, options.memory_mb, options.seeds, argv[separator + 1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("harness", help=f"one of {harness_names()}")
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time")
    parser.add_argument("--memory_mb", type=int, default=4096,
                        help="address-space limit of the fuzzing process (RLIMIT_AS)")
    parser.add_argument("--runs", type=int, default=None, help="stop after this many inputs")
    parser.add_argument("--corpus", default=None,
                        help="corpus directory, kept between runs (default: a new temporary one)")
    parser.add_argument("--artifacts", default=None,
                        help="where findings are saved (default: CORPUS/findings)")
    parser.add_argument("--log", default=None, help="file for libFuzzer's full output")
    options = parser.parse_args(argv)
    log = open(options.log, "a") if options.log else None
    try:
        code, summary = run(options.harness, options.seconds, options.memory_mb, options.runs,
                            options.corpus, options.artifacts, log)
    finally:
        if log is not None:
            log.close()
    print(summary_line(options.harness, code, summary))
    if code:
        print(summary.get("output_tail", ""), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
