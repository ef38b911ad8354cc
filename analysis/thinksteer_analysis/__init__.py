"""Analysis of thinksteer run directories.

Everything reads outputs by the names thinksteer writes (stage directories, hook names); see
the README's output layout. Today: generation traces (`traces`)."""
from .traces import load_traces, summarize_traces  # noqa: F401
