"""Generation traces: <run.dir>/generate/generations.jsonl, one JSON object per prompt.

    python -m thinksteer_analysis.traces RUN_DIR     # prints a summary table
"""
import json
import pathlib
import statistics
import sys


def load_traces(run_dir):
    """Returns the list of trace dicts of a finished generate stage (raises if it is not finished)."""
    stage = pathlib.Path(run_dir) / "generate"
    path = stage / "generations.jsonl"
    if not (stage / "generations.h5.done").exists():
        raise FileNotFoundError(f"{stage / 'generations.h5.done'}: no .done marker; the generate stage has not finished")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def summarize_traces(traces):
    """Counts, closed-thinking rate, finish reasons and token lengths."""
    n = len(traces)
    new = [t["n_new_tokens"] for t in traces]
    think = [t["n_thinking_tokens"] for t in traces]
    reasons = {}
    for t in traces:
        reasons[t["finish_reason"]] = reasons.get(t["finish_reason"], 0) + 1
    return {
        "traces": n,
        "thinking_closed": sum(t["thinking_closed"] for t in traces) / n if n else 0.0,
        "finish_reasons": reasons,
        "new_tokens_mean": statistics.fmean(new) if n else 0.0,
        "thinking_tokens_mean": statistics.fmean(think) if n else 0.0,
    }


def main(argv):
    if len(argv) != 1:
        print(__doc__)
        return 2
    for k, v in summarize_traces(load_traces(argv[0])).items():
        print(f"{k:22s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
