"""Analysis of thinksteer run directories.

Everything reads outputs by the names thinksteer writes (stage directories, hook names, dataset names);
see the README's output layout. One module per run artifact, mirroring the C++ artifact modules (each
has its path under the run directory, its format name and schema version, and a validating reader):

  generations     generate/generations.h5 (+ generations.jsonl)  thinksteer.generations  schema 1
  spans           annotate/spans.h5                              thinksteer.spans        schema 1
  activations     collect/activations.h5                         thinksteer.activations  schema 1
  attribution     attribute/attribution.h5                       thinksteer.attribution  schema 1
  vectors         vectors/vectors.h5                             thinksteer.vectors      format_version 1
  sweep_manifest  sweep/manifest.jsonl                           JSON lines (no format tag)
  sweep_task      sweep/tasks/<key>.h5                           thinksteer.sweep_task   schema 2
  sweep_summary   sweep/summary.h5                               thinksteer.sweep_summary schema 1, format_version 1
  sentences       sentences/sentences.h5                         thinksteer.sentences    schema 1
  taxonomy        taxonomy/tasks/<key>.h5                        thinksteer.taxonomy_task schema 1
                  taxonomy/summary.h5                            thinksteer.taxonomy_summary schema 1
                  titles/<key>/titles.json                       thinksteer.titles       version 1 (JSON keys)

On top of them: sweep_analysis (series, levels, the §A.6 bars, the sweep table), figures (the taxonomy's
in taxonomy_figures), acceptance, and the command line (cli; `thinksteer-analysis figures|summary|acceptance
RUN_DIR`, also `python -m thinksteer_analysis ...`). Shared checked reads and SchemaError are in schema."""
from .acceptance import acceptance_rows, behaviour_verdicts, format_acceptance
from .activations import ACTIVATIONS, ActivationIndex, load_activation_index, load_activations, open_activations
from .attribution import ATTRIBUTION, Attribution, load_attribution
from .basevec import BASEVEC_SUMMARY, BASEVEC_TASK, BasevecSummary, BasevecTask, read_basevec_summary, read_basevec_task
from .generations import GENERATIONS, Generations, load_generations, load_traces, summarize_traces
from .schema import Artifact, SchemaError
from .sentences import SENTENCES, Sentences, read_sentences
from .spans import SPANS, Spans, load_spans
from .sweep_analysis import Bars, Level, fraction_bars, format_table
from .sweep_manifest import SWEEP_MANIFEST, SweepPoint, load_sweep_manifest
from .sweep_summary import SWEEP_SUMMARY, SweepSummary, load_sweep_summary
from .sweep_task import SWEEP_TASK, SweepTask, load_sweep_task
from .taxonomy import (TAXONOMY_SUMMARY, TAXONOMY_TASK, TITLES, TaxonomySummary, TaxonomyTask, Titles, read_taxonomy_summary,
                       read_taxonomy_task, read_titles)
from .vectors import VECTORS, VectorSet, load_vectors

# Every run artifact, by module name.
ARTIFACTS: dict[str, Artifact] = {
    "generations": GENERATIONS, "spans": SPANS, "activations": ACTIVATIONS, "attribution": ATTRIBUTION, "vectors": VECTORS,
    "sweep_manifest": SWEEP_MANIFEST, "sweep_task": SWEEP_TASK, "sweep_summary": SWEEP_SUMMARY,
    "sentences": SENTENCES, "taxonomy_task": TAXONOMY_TASK, "taxonomy_summary": TAXONOMY_SUMMARY, "titles": TITLES,
    "basevec_task": BASEVEC_TASK, "basevec_summary": BASEVEC_SUMMARY,
}

__all__ = [
    "ARTIFACTS", "ACTIVATIONS", "ATTRIBUTION", "BASEVEC_SUMMARY", "BASEVEC_TASK", "GENERATIONS", "SENTENCES", "SPANS", "SWEEP_MANIFEST", "SWEEP_SUMMARY", "SWEEP_TASK",
    "TAXONOMY_SUMMARY", "TAXONOMY_TASK", "TITLES", "VECTORS",
    "ActivationIndex", "Artifact", "Attribution", "Bars", "BasevecSummary", "BasevecTask", "Generations", "Level", "SchemaError", "Sentences", "Spans", "SweepPoint",
    "SweepSummary", "SweepTask", "TaxonomySummary", "TaxonomyTask", "Titles", "VectorSet", "acceptance_rows", "behaviour_verdicts", "format_acceptance", "format_table", "fraction_bars",
    "load_activation_index", "load_activations", "load_attribution", "load_generations", "load_spans", "load_sweep_manifest",
    "load_sweep_summary", "load_sweep_task", "load_traces", "load_vectors", "open_activations", "read_sentences", "read_taxonomy_summary",
    "read_basevec_summary", "read_basevec_task", "read_taxonomy_task", "read_titles", "summarize_traces",
]
