"""What the benchmark scripts share: peak memory, worker processes' results, median (range)."""

import json
import os
import resource
import statistics
import subprocess
import sys

RESULT_PREFIX = "RESULT "


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_result(result) -> None:
    """A worker's answer, as the line `run_worker` reads."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_worker(command, name, **environment):
    """Runs a worker process to its end and returns its JSON result; None (said on stderr, with
    the worker's last error line) where it printed none."""
    done = subprocess.run(command, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **environment))
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"  {name}: failed: {reason}", file=sys.stderr)
    return None


def spread(values, digits=0) -> str:
    """'median (min-max)' of the values that exist, the value alone if one, or '-'."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")
