"""Analysis of thinksteer run directories.

Everything reads outputs by the names thinksteer writes (stage directories, hook names, dataset names);
see the README's output layout. Generation traces (`traces`), collected activations (`activations`),
layer attribution (`attribution`), the reduced steering sweep (`sweep`) and the papers' figures
(`figures`; `python -m thinksteer_analysis figures RUN_DIR`)."""
from .activations import load_activations, open_activations  # noqa: F401
from .attribution import Attribution, load_attribution  # noqa: F401
from .h5schema import SchemaError  # noqa: F401
from .sweep import SweepSummary, fraction_bars, format_table, load_sweep_summary  # noqa: F401
from .traces import load_traces, summarize_traces  # noqa: F401
