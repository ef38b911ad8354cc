"""Analysis of thinksteer run directories.

Everything reads outputs by the names thinksteer writes (stage directories, hook names); see
the README's output layout. Today: generation traces (`traces`) and collected activations
(`activations`)."""
from .activations import load_activations, open_activations  # noqa: F401
from .traces import load_traces, summarize_traces  # noqa: F401
