"""Every fuzz harness in fuzz/ runs briefly from its seeds under a memory limit and finds
nothing; the runner reports an escaping exception and memory exhaustion as findings, with the
input saved. Long campaigns: scripts/fuzz_campaign.sh (figures in docs/SECURITY.md)."""

import concurrent.futures
import os

import importlib.util

import pytest

from fuzz import runner

assert importlib.util.find_spec("atheris"), (
    "atheris is missing: bash scripts/setup.sh installs it (requirements-test.txt)")

# Seconds of fuzzing per harness; harnesses run two at a time (each is one process), so that
# with their imports and seeds the whole file stays near two minutes.
SECONDS = 4
PARALLEL = 2
# Above what TensorFlow's import reserves, far below what an unbounded reader would take.
MEMORY_MB = 8192


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    """{harness: (exit code, summary, corpus directory)} of a short run of every harness."""
    def run(harness):
        corpus = tmp_path_factory.mktemp(harness)
        return harness, (*runner.run(harness, SECONDS, MEMORY_MB, corpus=str(corpus)), corpus)

    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        return dict(pool.map(run, runner.harness_names()))


@pytest.mark.parametrize("harness", runner.harness_names())
def test_each_harness_finds_nothing_in_a_short_run(harness, short_runs):
    code, summary, corpus = short_runs[harness]
    line = runner.summary_line(harness, code, summary)
    assert code == 0, line + "\n" + summary.get("output_tail", "")
    assert summary["executions"] > 0 and summary["cov"] > 0, line
    assert os.listdir(corpus / "seeds"), "the harness wrote no seeds"


def test_an_escaping_exception_is_a_finding_with_its_input_saved(tmp_path):
    code, summary = runner.run("tests.fuzz_planted", 30, 2048, corpus=str(tmp_path))
    assert code != 0
    assert "KeyError" in summary["output_tail"]
    saved = [open(path, "rb").read() for path in summary["artifacts"]]
    assert saved and all(data.startswith(b"crash") for data in saved)


def test_memory_beyond_the_limit_is_a_finding(tmp_path):
    code, summary = runner.run("tests.fuzz_planted_memory", 30, 2048, corpus=str(tmp_path))
    assert code != 0 and summary["artifacts"]
    assert "MemoryError" in summary["output_tail"] or "out-of-memory" in summary["output_tail"]


def test_the_summary_line_reads_libfuzzer_status():
    output = ("#4096\tpulse  cov: 812 ft: 1433 corp: 58/9Kb lim: 4096 exec/s: 204 rss: 611Mb\n"
              "#9000\tDONE   cov: 830 ft: 1500 corp: 61/10Kb lim: 4096 exec/s: 300 rss: 620Mb\n"
              "Done 9000 runs in 30 second(s)\n")
    assert runner.summarize(output) == {"executions": 9000, "cov": 830, "ft": 1500,
                                        "corpus": 61, "exec_per_s": 300, "seconds": 30}
