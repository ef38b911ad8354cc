// Every config key, declared once: its field, help text and the check of its value (defaults are the
// member initializers in core/config.h). Checks that relate several keys are check_relations below.
#include <cfloat>

#include "core/config_table.h"

namespace ts::config_detail {

using check::at_least;
using check::in_range;
using check::in_unit;
using check::positive;

void declare_run_options(OptionTable& t, Config& c) {
  t.add("model.path", &c.model.path, "HF checkpoint directory (config.json, safetensors, tokenizer.json)");
  t.add_option("model.dtype", &c.model.dtype, "compute dtype (auto: float32 on CPU, the checkpoint's on GPU)");
  t.add<std::string>("model.device", &c.model.device, "cpu|cuda|cuda:N", [](const std::string& d) {
    return d == "cpu" || d.rfind("cuda", 0) == 0 ? "" : "must be cpu, cuda or cuda:N";
  });
  t.add("run.dir", &c.run.dir, "run directory: every output of the run goes here", check::not_empty());
  t.add("run.threads", &c.run.threads, "CPU intra-op threads (0: library default)", at_least(int64_t{0}));
  t.add("data.prompts", &c.data.prompts, "prompts: a JSONL file, one object per line");
  t.add("data.prompt_field", &c.data.prompt_field, "JSONL field holding the prompt text", check::not_empty());
  t.add("data.id_field", &c.data.id_field, "JSONL field holding the prompt id (absent: line number)", check::not_empty());
  t.add("data.answer_field", &c.data.answer_field, "JSONL field holding the reference answer (optional)");
  t.add("data.limit", &c.data.limit, "use only the first N prompts (0: all)", at_least(int64_t{0}));
  t.add<std::string>("data.template", &c.data.template_text, "each prompt becomes this text with {prompt} replaced (\\n: newline; empty: the prompt as is), "
        "e.g. \"Question: {prompt}\\nAnswer:\"", [](const std::string& v) {
          return v.empty() || v.find("{prompt}") != std::string::npos ? std::string() : std::string("must contain {prompt}");
        });
  t.add("generate.max_new_tokens", &c.generate.max_new_tokens, "new tokens per prompt at most", positive());
  t.add("generate.temperature", &c.generate.temperature, "sampling temperature (0: greedy)", at_least(0.0));
  t.add("generate.top_p", &c.generate.top_p, "nucleus sampling mass (1: off)", in_unit(true, false));
  t.add("generate.top_k", &c.generate.top_k, "top-k sampling (0: off)", at_least(int64_t{0}));
  t.add("generate.seed", &c.generate.seed, "sampling seed; each prompt's stream depends only on (seed, prompt id)");
  t.add("generate.batch_size", &c.generate.batch_size, "prompts per batch", positive());
  t.add_list("generate.stop", &c.generate.stop, "stop strings, comma-separated (generation also stops at EOS)", check::no_empty_item());
  t.add_option("generate.chat_format", &c.generate.chat_format, "prompt format");
  t.add("generate.system", &c.generate.system, "system prompt for chat formats that take one");
  t.add("parallel.pipeline_stages", &c.parallel.pipeline_stages,
        "pipeline stages P (ranks = data-parallel replicas x P); each stage holds a contiguous range of layers", positive());
  t.add("parallel.micro_batches", &c.parallel.micro_batches, "micro-batches per batch in a pipeline (0: one per stage)", at_least(int64_t{0}));
  t.add("parallel.timeout_seconds", &c.parallel.timeout_seconds, "GPU collectives (NCCL) that take longer abort the job", check::positive_number());
  t.add("parallel.term_grace_seconds", &c.parallel.term_grace_seconds, "after SIGTERM a rank exits (code 75) at the latest this many seconds later",
        check::positive_number());
  t.add_option("output.dtype", &c.output.dtype, "stored activations (bfloat16 as uint16 bits, attribute encoding)");
  t.add("output.compression", &c.output.compression, "gzip level for HDF5 datasets, 0..9 (needs parallel filtered writes in the HDF5 build)",
        in_range(0, 9));
  t.add("output.buffer_mb", &c.output.buffer_mb, "collect: MB of rows a rank buffers before the ranks write them collectively", in_range(0, int64_t{1} << 30));
}

void declare_collect_annotate_options(OptionTable& t, Config& c) {
  t.add_option("collect.source", &c.collect.source, "data.prompts chat-formatted, or prompt + generated tokens of collect.input");
  t.add("collect.input", &c.collect.input, "generations JSONL for source=generations (default <run.dir>/generate/generations.jsonl)");
  t.add_list("collect.hooks", &c.collect.hooks, "hook names (TransformerLens), comma-separated; blocks.*.X expands over collect.layers",
             check::all({check::not_empty_list(), check::no_empty_item()}));
  t.add_list("collect.layers", &c.collect.layers, "layers for blocks.* hooks (empty: all)", check::layer_indices());
  t.add_option("collect.positions", &c.collect.positions, "rows to store (spans: the mean over each span of collect.spans_field; span_tokens: each token of a span, with its label)");
  t.add("collect.spans_field", &c.collect.spans_field, "JSONL field with spans [{begin, end, label}] in code points of the prompt text");
  t.add("collect.spans", &c.collect.spans, "source = generations whose rows have no collect.spans_field: the spans of this annotate output "
        "(default <run.dir>/annotate/spans.h5)");
  t.add("collect.batch_size", &c.collect.batch_size, "sequences per forward batch", positive());
  t.add_option("annotate.annotator", &c.annotate.annotator,
               "built-in rules (offline, deterministic), the toy world's planted-truth templates, or the docs/algorithms.md §A.3 prompt "
               "on an OpenAI-compatible endpoint or a local checkpoint, or the clusters of a taxonomy SAE (§B.7)");
  t.add("annotate.taxonomy_sae", &c.annotate.taxonomy_sae, "annotator taxonomy: an SAE export directory of `thinksteer titles` (<run.dir>/titles/<key>)");
  t.add("annotate.taxonomy_sentences", &c.annotate.taxonomy_sentences,
        "annotator taxonomy: the sentences file whose rows it classifies (default <run.dir>/sentences/sentences.h5)");
  t.add("annotate.lexicon", &c.annotate.lexicon, "lexicon rules file (empty: the built-in configs/annotate/lexicon.txt)");
  t.add("annotate.input", &c.annotate.input, "JSONL of traces (default <run.dir>/generate/generations.jsonl)");
  t.add("annotate.text_field", &c.annotate.text_field, "JSONL field holding a trace's text", check::not_empty());
  t.add("annotate.id_field", &c.annotate.id_field, "JSONL field holding a trace's id (a string or an integer)", check::not_empty());
  t.add_option("annotate.part", &c.annotate.part, "what to annotate: between <think> and </think> (when present), or all");
  t.add("annotate.llm_endpoint", &c.annotate.llm_endpoint,
        "llm: OpenAI-compatible endpoint, http(s)://host[:port]/v1 (requests go to <endpoint>/chat/completions) or the full "
        ".../chat/completions URL; empty: generate with the local checkpoint annotate.llm_model_path",
        check::http_url_or_empty());
  t.add("annotate.llm_model", &c.annotate.llm_model, "llm: the model name sent to the endpoint (required with llm_endpoint)");
  t.add("annotate.llm_model_path", &c.annotate.llm_model_path,
        "llm without an endpoint: local HF checkpoint directory run by thinksteer's engine (greedy; on model.device in model.dtype)");
  t.add_option("annotate.llm_chat_format", &c.annotate.llm_chat_format, "llm, local checkpoint: chat format of the prompt");
  t.add("annotate.llm_api_key_env", &c.annotate.llm_api_key_env,
        "llm: name of the environment variable holding the endpoint's API key (unset or empty: no Authorization header); "
        "the key itself never goes in a config file",
        check::env_var_name());
  t.add("annotate.llm_max_tokens", &c.annotate.llm_max_tokens, "llm: reply tokens at most (the request's max_tokens; local: new tokens)", positive());
  t.add("annotate.llm_timeout_seconds", &c.annotate.llm_timeout_seconds, "llm endpoint: seconds one request may take, connection included",
        check::positive_number());
  t.add("annotate.llm_retries", &c.annotate.llm_retries,
        "llm endpoint: further attempts after a failed request (connection errors, time-outs, HTTP 408/409/429/5xx, unusable body)",
        in_range(0, 100));
  t.add("annotate.llm_retry_seconds", &c.annotate.llm_retry_seconds,
        "llm endpoint: back-off; retry k waits llm_retry_seconds * 2^(k-1), or the server's Retry-After when longer", at_least(0.0));
  t.add("annotate.llm_concurrency", &c.annotate.llm_concurrency, "llm: requests in flight per rank (endpoint), or prompts per generation batch (local)",
        in_range(1, 1024));
  t.add("annotate.llm_max_failed_fraction", &c.annotate.llm_max_failed_fraction,
        "llm: when more than this share of the traces got no reply (request_failed), the stage exits 1 and writes nothing; "
        "otherwise their failures are in problems.jsonl and they have no spans",
        in_unit(false, false));
}

void declare_vectors_steer_options(OptionTable& t, Config& c) {
  t.add("vectors.generations", &c.vectors.generations, "generations JSONL (default <run.dir>/generate/generations.jsonl)");
  t.add("vectors.spans", &c.vectors.spans, "spans.h5 that `annotate` wrote for those generations (default <run.dir>/annotate/spans.h5)");
  t.add("vectors.hook", &c.vectors.hook, "hook the vectors are measured at and meant for; blocks.*.X expands over vectors.layers", check::not_empty());
  t.add_list("vectors.layers", &c.vectors.layers, "layers for a blocks.* hook (empty: all)", check::layer_indices());
  t.add_option("vectors.window", &c.vectors.window,
               "per-span window: the preceding token + the first 10 span tokens, or the preceding token + the span minus its last token");
  t.add("vectors.rescale", &c.vectors.rescale, "rescale each feature vector to the norm of the overall mean at its layer (true|false)");
  t.add_list("vectors.labels", &c.vectors.labels, "behaviours to compute, comma-separated (empty: every label of the spans file)", check::no_empty_item());
  t.add("vectors.batch_size", &c.vectors.batch_size, "traces per forward batch", positive());
  t.add("vectors.gguf", &c.vectors.gguf, "also write one llama.cpp GGUF control vector per label (true|false)");
  t.add_option("vectors.gguf_layer_map", &c.vectors.gguf_layer_map,
               "GGUF tensor of resid_post[l]: direction.{l+1} (next-block) or direction.{l} (same-block, where llama.cpp adds it at layer l)");
  t.add("attribute.generations", &c.attribute.generations, "generations JSONL (default <run.dir>/generate/generations.jsonl)");
  t.add("attribute.spans", &c.attribute.spans, "spans.h5 of those generations (default <run.dir>/annotate/spans.h5)");
  t.add("sentences.generations", &c.sentences.generations, "generations JSONL (default <run.dir>/generate/generations.jsonl)");
  t.add("sentences.reference", &c.sentences.reference,
        "optional spans.h5 of `annotate` (with model.path) on those generations: /sentences/label holds the covering span's label");
  t.add("sentences.hook", &c.sentences.hook, "hook the sentence activations are read at; blocks.*.X expands over sentences.layers", check::not_empty());
  t.add_list("sentences.layers", &c.sentences.layers, "layers for a blocks.* hook (empty: all)", check::layer_indices());
  t.add("sentences.min_words", &c.sentences.min_words, "sentences of fewer white-space separated words are dropped (docs/algorithms.md §B.3)",
        in_range(1, 1'000'000));
  t.add_option("sentences.position", &c.sentences.position,
               "a sentence's activation: its §B.3 window mean (what the SAE trains on) or the activation at its last token (§B.7's classifier input)");
  t.add("sentences.batch_size", &c.sentences.batch_size, "traces per forward batch", positive());
  t.add("attribute.vectors", &c.attribute.vectors, "vectors.h5 of `thinksteer vectors` (default <run.dir>/vectors/vectors.h5)");
  t.add_option("attribute.metric", &c.attribute.metric, "the gradient the original code computes, or log p of the observed next token");
  t.add_option("attribute.mode", &c.attribute.mode, "one forward + backward per batch of traces, or one pass per span (as the original)");
  t.add_list("attribute.labels", &c.attribute.labels, "behaviours, comma-separated (empty: every feature vector)", check::no_empty_item());
  t.add_list("attribute.layers", &c.attribute.layers, "layers, comma-separated (empty: every layer of the vectors)", check::layer_indices());
  t.add("attribute.n_examples", &c.attribute.n_examples, "the first N traces with spans (0: all)", at_least(int64_t{0}));
  t.add("attribute.batch_size", &c.attribute.batch_size, "traces per forward batch (mode trace)", positive());
  t.add("attribute.exclude_first", &c.attribute.exclude_first, "first layers never selected (-1: auto, embedding-aligned)", at_least(int64_t{-1}));
  t.add("attribute.exclude_first_fraction", &c.attribute.exclude_first_fraction, "auto exclude_first: at least this share of the layers",
        in_unit(false, true));
  t.add("attribute.embed_cos", &c.attribute.embed_cos,
        "auto exclude_first: also leading layers whose vector has max |cos| >= this with an embedding row (above 1: none)", at_least(0.0));
  t.add("attribute.exclude_last", &c.attribute.exclude_last, "last layers never selected (-1: ceil(0.1 * layers))", at_least(int64_t{-1}));
  t.add("attribute.n_select", &c.attribute.n_select, "layers selected per behaviour (peaks of mean |effect|)", positive());
  t.add("steer.vectors", &c.steer.vectors, "vectors file: the feature vector named after each behaviour (default <run.dir>/vectors/vectors.h5)");
  t.add("steer.attribution", &c.steer.attribution,
        "attribute's attribution.h5, read for sweep.layers = auto (default <run.dir>/attribute/attribution.h5)");
  t.add("steer.divide_by_layers", &c.steer.divide_by_layers, "a vector applied at n layers at once adds coef/n at each (true|false)");
  t.add("steer.save_text", &c.steer.save_text, "keep every generated text in the task files (true|false)");
  t.add("steer.force_close", &c.steer.force_close, "a trace still thinking at generate.max_new_tokens gets steer.force_close_text and "
        "steer.force_close_tokens more tokens to answer (docs/algorithms.md §C.3); its thinking length stays the cap");
  t.add("steer.force_close_text", &c.steer.force_close_text, "forced-close text (\\n: newline; in double quotes to keep spaces at its ends)");
  t.add("steer.force_close_tokens", &c.steer.force_close_tokens, "new tokens after the forced close", in_range(1, 1'000'000));
}

void declare_sweep_options(OptionTable& t, Config& c) {
  using check::all;
  using check::not_empty_list;
  t.add_option("sweep.kind", &c.sweep.kind, "the sweep `sweep plan|run` and `reduce` work on: steer ([sweep] axes) | taxonomy ([taxonomy] axes)");
  t.add_list("sweep.datasets", &c.sweep.datasets, "prompt sets, comma-separated data.prompts values (empty: data.prompts)", check::no_empty_item());
  t.add_list("sweep.vectors", &c.sweep.vectors, "behaviours whose vectors are applied, comma-separated (empty: the baselines alone, "
             "e.g. to evaluate a model on sampled runs)", check::no_empty_item());
  t.add_list("sweep.layers", &c.sweep.layers,
             "layers: auto (attribute's first pick per behaviour), selected (every layer it selected), N, N+M (several at once), all (every layer of the "
             "vectors file at once) or each (one point per layer of the file), comma-separated",
             all({not_empty_list(), check::no_empty_item()}));
  // Coefficients scale fp32 vectors: beyond fp32's range a steered activation is inf.
  t.add_list("sweep.coefficients", &c.sweep.coefficients, "steering coefficients c (either sign), comma-separated",
             all({not_empty_list(), check::numbers(false, 1e6)}));
  t.add_list("sweep.hooks", &c.sweep.hooks, "hook sites, comma-separated (empty: the vectors file's): " + option_names_joined<SweepHook>(", ", ", "),
             check::each_option<SweepHook>());
  t.add_list("sweep.ops", &c.sweep.ops, "add (x + c v) | project-out (x - (x.v^)v^), comma-separated", all({not_empty_list(), check::each_option<SweepOp>()}));
  t.add_list("sweep.positions", &c.sweep.positions, "where the intervention applies: all | prompt | generated, comma-separated",
             all({not_empty_list(), check::each_option<SweepPositions>()}));
  t.add_list("sweep.controls", &c.sweep.controls, "none (the vector) | random (a same-norm random direction per seed), comma-separated",
             all({not_empty_list(), check::each_option<SweepControl>()}));
  t.add_list("sweep.seeds", &c.sweep.seeds, "random-direction seeds (and sampling seeds when generate.temperature > 0), comma-separated",
             all({not_empty_list(), check::numbers(true, 9.2e18)}));
  t.add("sweep.random_directions", &c.sweep.random_directions,
        "same-norm random directions per seed for control random: 1 (the seed itself) or n (seeds 100*seed + j, j < n)",
        in_range(1, 100));
  t.add("sweep.task_id", &c.sweep.task_id, "sweep run: the manifest row to run (-1: $SLURM_ARRAY_TASK_ID); also given as --task-id N", at_least(int64_t{-1}));
  t.add("reduce.allow_partial", &c.reduce.allow_partial, "with tasks missing: write the summary marked partial and exit 0 (true|false)");
  t.add("reduce.bootstrap", &c.reduce.bootstrap, "bootstrap resamples of the prompts for the intervals", in_range(0, 10'000'000));
  t.add("reduce.ci", &c.reduce.ci, "interval level, e.g. 0.95", in_unit(true, true));
  t.add("reduce.seed", &c.reduce.seed, "bootstrap seed");
}

void declare_toy_log_options(OptionTable& t, Config& c) {
  const auto rate = in_unit(false, false);
  t.add("toy.seed", &c.toy.seed, "corpus seed; problem i depends only on (seed, i)");
  t.add("toy.n_problems", &c.toy.n_problems, "number of problems in the toy corpus", in_range(1, 100'000'000));
  t.add_option("toy.style", &c.toy.style, "trace style: slips corrected by backtracking (thinker), or direct with slips left (base)");
  t.add("toy.base_knows", &c.toy.base_knows,
        "base style: a base that knows how but not when: corrections after slips with a hidden coin of this probability, "
        "uncertainty and testing with base_knows x their rates (0: the plain base)", in_unit(false, false));
  t.add("toy.thorough", &c.toy.thorough, "thinker: share of traces, by a hidden per-trace coin, that test every step with example-testing "
        "(a planted length knob: ThinkEdit's planted truth, docs/thinkedit.md; 0: the corpus unchanged)", in_unit(false, false));
  t.add("toy.dispositions", &c.toy.dispositions,
        "thinker: probability of each of three hidden per-trace coins that make a trace backtrack after a slip at every "
        "slip candidate, estimate uncertainty after every step, and test every step (an experiment toward steering's planted truth, "
        "docs/algorithms.md §A.6; 0: the corpus unchanged)", in_unit(false, false));
  t.add("toy.disposition_cues", &c.toy.disposition_cues,
        "thinker: the question ends with one cue sentence per disposition of the trace (toy.dispositions), so the prompt shows it");
  t.add("toy.soft_gates", &c.toy.soft_gates,
        "thinker: a gate's yes is kept with probability 1 - soft_gates and a no becomes yes with rate * soft_gates / (1 - rate), by hidden coins (slips, uncertainty, testing; 0: the corpus unchanged)",
        in_unit(false, true));
  t.add("toy.cue_levels", &c.toy.cue_levels,
        "thinker: per trace and behaviour a hidden level k in 1-4, 6-9 shown at the end of the question (\"Slips: k in 10.\"), and each "
        "slip, uncertainty and testing choice a coin of k/10 (an experiment toward steering's planted truth, docs/algorithms.md §A.6)");
  t.add("toy.echoes", &c.toy.echoes,
        "thinker: each backtracking, uncertainty and testing sentence is followed by a second one of the same behaviour with this "
        "probability, by a hidden coin (an experiment toward steering's planted truth, docs/algorithms.md §A.6; 0: the corpus unchanged)",
        in_unit(false, true));
  t.add("toy.echo_again", &c.toy.echo_again,
        "thinker: an echo (toy.echoes) is followed by a third sentence of the same behaviour with this probability, by a "
        "hidden coin (an experiment toward steering's planted truth, docs/algorithms.md §A.6; 0: the corpus unchanged)",
        in_unit(false, true));
  t.add("toy.plain_echoes", &c.toy.plain_echoes,
        "thinker: the echo of a backtracking or testing sentence (toy.echoes) is a phrasing without arithmetic, as uncertainty's "
        "always is (an experiment toward steering's planted truth, docs/algorithms.md §A.6)");
  t.add("toy.plain_backtracking", &c.toy.plain_backtracking,
        "thinker: a slip is corrected by a backtracking sentence without arithmetic (\"Wait, that's wrong.\") and then the step "
        "again as a deduction with the right value (an experiment toward steering's planted truth, docs/algorithms.md §A.6)");
  t.add("toy.thinker_corrects", &c.toy.thinker_corrects,
        "thinker: a slip is corrected by a hidden coin of this probability, else the wrong value stays (an experiment toward "
        "steering's planted truth, docs/algorithms.md §A.6; 1: every slip corrected, no coin drawn, the corpus unchanged)",
        in_unit(false, false));
  t.add("toy.rechecks", &c.toy.rechecks,
        "thinker: after a right step whose value's units digit passes this digit-gate rate, a backtracking remark without "
        "arithmetic and the step again (an experiment toward steering's planted truth, docs/algorithms.md §A.6; 0: the corpus unchanged)",
        in_unit(false, true));
  t.add_option("toy.thinker_gates", &c.toy.thinker_gates,
               "the thinker's slips, uncertainty and testing: digit gates (deterministic; the shipped thinker) or hidden coins (calibrated, judged on sampled traces)");
  t.add("toy.slip_rate", &c.toy.slip_rate, "share of carry/borrow steps written wrong (a slip; digit gate in tenths, or a coin)", rate);
  t.add("toy.example_testing_rate", &c.toy.example_testing_rate, "share of steps checked by the inverse operation (thinker; a coin, or a digit gate)", rate);
  t.add("toy.uncertainty_rate", &c.toy.uncertainty_rate, "share of steps followed by an uncertainty remark (thinker; a coin, or a digit gate)", rate);
  t.add("toy.adding_knowledge_rate", &c.toy.adding_knowledge_rate, "digit gate, in tenths: share of steps followed by a recalled fact", rate);
  t.add("toy.min_steps", &c.toy.min_steps, "fewest arithmetic steps per problem (1..4)", in_range(1, 4));
  t.add("toy.max_steps", &c.toy.max_steps, "most arithmetic steps per problem (1..4)", in_range(1, 4));
  t.add("toy.test_fraction", &c.toy.test_fraction, "share of problems in the test split (by a hash of the id)", rate);
  // 256 byte tokens + the 6 R1 added tokens of toy/bpe_trainer.h + at least one merge.
  t.add("toy.vocab_size", &c.toy.vocab_size, "toy tokenizer vocabulary (256 bytes + merges + 6 R1 added tokens), 263..65536", in_range(263, 65536));
  t.add("train.tokenizer", &c.train.tokenizer, "directory with tokenizer.json and tokenizer_config.json (default <run.dir>/toy/tokenizer)");
  t.add("train.d_model", &c.train.d_model, "model width D", in_range(1, 65536));
  t.add("train.n_layer", &c.train.n_layer, "decoder layers L", in_range(1, 1024));
  t.add("train.n_head", &c.train.n_head, "attention heads H", in_range(1, 1024));
  t.add("train.n_kv_head", &c.train.n_kv_head, "key/value heads K (GQA when K < H; divides H)", in_range(1, 1024));
  t.add("train.d_mlp", &c.train.d_mlp, "MLP width F", in_range(1, 1 << 20));
  t.add("train.max_position", &c.train.max_position, "context length; a longer training sequence is an error", in_range(1, 1 << 20));
  t.add("train.steps", &c.train.steps, "optimizer steps", positive());
  t.add("train.batch_size", &c.train.batch_size, "sequences per step over all ranks (each rank takes an even share)", positive());
  t.add("train.lr", &c.train.lr, "peak AdamW learning rate (linear warm-up, cosine decay)", check::positive_number());
  t.add("train.min_lr_ratio", &c.train.min_lr_ratio, "final learning rate as a fraction of train.lr", rate);
  t.add("train.warmup_steps", &c.train.warmup_steps, "linear warm-up steps", at_least(int64_t{0}));
  t.add("train.weight_decay", &c.train.weight_decay, "decoupled weight decay on matrices (not norms or biases)", at_least(0.0));
  t.add("train.beta1", &c.train.beta1, "AdamW beta1", in_unit(false, true));
  t.add("train.beta2", &c.train.beta2, "AdamW beta2", in_unit(false, true));
  t.add("train.grad_clip", &c.train.grad_clip, "clip the global gradient norm to this (0: off)", at_least(0.0));
  t.add("train.init_std", &c.train.init_std, "standard deviation of the normal init of matrices and embeddings", check::positive_number());
  t.add("train.init_from", &c.train.init_from, "start from this checkpoint (same shape and tokenizer) instead of a random init: fine-tuning");
  t.add("train.seed", &c.train.seed, "seed of the init and the data order");
  t.add("train.checkpoint_every", &c.train.checkpoint_every, "steps between resumable state saves (0: only when stopped)", at_least(int64_t{0}));
  t.add_option("train.save_dtype", &c.train.save_dtype, "dtype of the written HF checkpoint");
  t.add("train.push_share", &c.train.push_share, "share of sequences given one random push (a Gaussian direction at a random layer's resid_post, every position) as training noise", rate);
  t.add("train.push_max", &c.train.push_max, "a push's norm is uniform in [0, push_max] times the norm of the sequence's mean activation at that layer", at_least(0.0));
  t.add_option("log.level", &c.log.level, "log level");
  t.add("log.progress_seconds", &c.log.progress_seconds, "seconds between progress lines in batch logs", check::positive_number());
}

void check_relations(const Config& c, const SourceOf& source_of) {
  if (c.collect.positions == CollectPositions::generated && c.collect.source != CollectSource::generations)
    fail(source_of, "collect.positions", "generated positions need collect.source = generations");
  if (c.annotate.annotator == AnnotatorKind::llm && !c.annotate.llm_endpoint.empty() && c.annotate.llm_model.empty())
    fail(source_of, "annotate.llm_model", "the model name to send to annotate.llm_endpoint is required");
  if (c.annotate.annotator == AnnotatorKind::llm && c.annotate.llm_endpoint.empty() && c.annotate.llm_model_path.empty())
    fail(source_of, "annotate.llm_model_path", "annotator llm needs an endpoint (annotate.llm_endpoint) or a local checkpoint (annotate.llm_model_path)");
  if (c.annotate.annotator == AnnotatorKind::taxonomy && c.annotate.taxonomy_sae.empty())
    fail(source_of, "annotate.taxonomy_sae", "annotator taxonomy needs an SAE export directory (`thinksteer titles` writes <run.dir>/titles/<key>)");
  if (c.taxonomy.judge == TaxonomyJudge::llm && c.annotate.llm_endpoint.empty() && c.annotate.llm_model_path.empty())
    fail(source_of, "annotate.llm_endpoint", "taxonomy.judge = llm needs an OpenAI-compatible endpoint (annotate.llm_endpoint, annotate.llm_model) or a local checkpoint (annotate.llm_model_path)");
  if (c.taxonomy.judge == TaxonomyJudge::llm && !c.annotate.llm_endpoint.empty() && c.annotate.llm_model.empty())
    fail(source_of, "annotate.llm_model", "the model name to send to annotate.llm_endpoint is required");
  if (c.thinkedit.short_tokens > c.thinkedit.long_tokens) fail(source_of, "thinkedit.short_tokens", "must be <= thinkedit.long_tokens");
  if (c.thinkedit.short_percentile > c.thinkedit.long_percentile) fail(source_of, "thinkedit.short_percentile", "must be <= thinkedit.long_percentile");
  if (c.toy.min_steps > c.toy.max_steps) fail(source_of, "toy.max_steps", "must be >= toy.min_steps");
  if (c.toy.cue_levels && (c.toy.thinker_gates == ToyGates::coins || c.toy.dispositions > 0 || c.toy.disposition_cues || c.toy.soft_gates > 0))
    fail(source_of, "toy.cue_levels", "cannot be combined with toy.thinker_gates = coins, toy.dispositions, toy.disposition_cues or toy.soft_gates");
  if (c.toy.plain_echoes && !(c.toy.echoes > 0)) fail(source_of, "toy.plain_echoes", "needs toy.echoes > 0 (it rephrases the echoes)");
  if (c.toy.echo_again > 0 && !(c.toy.echoes > 0)) fail(source_of, "toy.echo_again", "needs toy.echoes > 0 (it extends the echoes)");
  if (c.toy.thinker_corrects < 1 && c.toy.dispositions > 0) fail(source_of, "toy.thinker_corrects", "below 1 cannot be combined with toy.dispositions");
  if (c.train.n_head % c.train.n_kv_head != 0) fail(source_of, "train.n_kv_head", "must divide train.n_head");
  if (c.train.d_model % c.train.n_head != 0 || (c.train.d_model / c.train.n_head) % 2 != 0)
    fail(source_of, "train.n_head", "must divide train.d_model into an even head size");
}

void declare_taxonomy_options(OptionTable& t, Config& c) {
  using check::all;
  using check::not_empty_list;
  t.add("taxonomy.sentences", &c.taxonomy.sentences, "sentence vectors of `sentences` (default <run.dir>/sentences/sentences.h5)");
  t.add_list("taxonomy.layers", &c.taxonomy.layers, "layers to cluster, comma-separated (empty: every layer of the sentences file)",
             check::layer_indices());
  t.add_list("taxonomy.clusters", &c.taxonomy.clusters, "cluster counts K >= 2 (= SAE latents), comma-separated",
             all({not_empty_list(), check::numbers(true, 1e6)}));
  t.add_list("taxonomy.methods", &c.taxonomy.methods, "sae (TopK SAE, docs/algorithms.md §B.4) | kmeans (spherical k-means), comma-separated",
             all({not_empty_list(), check::each_option<TaxonomyMethod>()}));
  t.add_list("taxonomy.seeds", &c.taxonomy.seeds, "seeds (SAE init and order, k-means++), comma-separated", all({not_empty_list(), check::numbers(true, 9.2e18)}));
  t.add("taxonomy.topk", &c.taxonomy.topk, "SAE: latents kept per sentence (at most K)", in_range(1, 1'000'000));
  t.add("taxonomy.batch_size", &c.taxonomy.batch_size, "SAE minibatch (all sentences when fewer)", in_range(1, 100'000'000));
  t.add("taxonomy.max_epochs", &c.taxonomy.max_epochs, "SAE: most epochs", in_range(1, 1'000'000));
  t.add("taxonomy.patience", &c.taxonomy.patience, "SAE: epochs without a better epoch-average loss before stopping", in_range(1, 1'000'000));
  t.add("taxonomy.lr", &c.taxonomy.lr, "SAE Adam learning rate (0: 2e-4 / sqrt(K / 2^14))", at_least(0.0));
  t.add("taxonomy.kmeans_iters", &c.taxonomy.kmeans_iters, "k-means: Lloyd iterations per init", in_range(1, 1'000'000));
  t.add("taxonomy.kmeans_inits", &c.taxonomy.kmeans_inits, "k-means: k-means++ inits (the best is kept)", in_range(1, 1000));
  t.add("taxonomy.memory_mb", &c.taxonomy.memory_mb, "MB of vectors a task may hold; beyond it rows stream from the sentences file (0: always)",
        in_range(0, int64_t{1} << 30));
  t.add_list("taxonomy.titles", &c.taxonomy.titles, "`titles`: selected (every seed of the (layer, K, method) reduce chose) | all | task keys, comma-separated",
             all({not_empty_list(), check::no_empty_item()}));
  t.add("taxonomy.title_examples", &c.taxonomy.title_examples, "`titles`: representative sentences per cluster (half closest to its direction, half random)",
        in_range(0, 100'000));
  t.add_option("taxonomy.judge", &c.taxonomy.judge,
        "none | llm: §B.5 titles and §B.6 accuracy/completeness by the model on annotate.llm_endpoint; reduce then chooses (layer, K) by the final score");
  t.add("taxonomy.judge_repetitions", &c.taxonomy.judge_repetitions, "judge: independent title sets per task", in_range(1, 100));
  t.add("taxonomy.judge_autograder", &c.taxonomy.judge_autograder, "judge: sentences graded per cluster (20% from the cluster)", in_range(5, 100'000));
  t.add("taxonomy.judge_completeness", &c.taxonomy.judge_completeness, "judge: sentences rated against their cluster", in_range(1, 100'000));
  t.add("taxonomy.judge_traces", &c.taxonomy.judge_traces, "judge: whole traces shown in each title prompt", in_range(0, 100));
  t.add("taxonomy.title_words", &c.taxonomy.title_words, "`titles`: distinctive words and word pairs kept per cluster", in_range(1, 1000));
}

void declare_basevec_options(OptionTable& t, Config& c) {
  using check::all;
  using check::not_empty_list;
  Config::Basevec& b = c.basevec;
  t.add("basevec.base_model", &b.base_model, "the base model's checkpoint directory (model.path is the thinking model)");
  t.add("basevec.generations", &b.generations, "the thinking model's rollouts (default <run.dir>/generate/generations.jsonl)");
  t.add("basevec.reference_spans", &b.reference_spans,
        "optional `annotate` spans of the rollouts: each disagreement position gets the label of the rollout's next token (evaluation by label)");
  t.add("basevec.sae", &b.sae, "the thinking model's taxonomy SAE: an export directory of `titles` (its layer is the SAE layer), or `selected`: the first export of <run.dir>/titles");
  t.add("basevec.base_prompt", &b.base_prompt, "the base model's prompt before the thinking text: same (the rollout's own prompt text) | qa_instr (§B.10) | v1 (§B.8) | a template with {question}",
        check::not_empty());
  t.add("basevec.layer", &b.layer, "steering layer: vectors train and apply at blocks.{layer}.hook_resid_post (-1: unset)", in_range(-1, 100'000));
  t.add("basevec.sae_layer", &b.sae_layer, "the SAE's layer as the pair's preset states it (-1: the export's own); an export of another layer is refused",
        in_range(-1, 100'000));
  t.add_list("basevec.methods", &b.methods, "correction (docs/algorithms.md §B.10) | linear (§B.8), comma-separated",
             all({not_empty_list(), check::each_option<BasevecMethod>()}));
  t.add_list("basevec.seeds", &b.seeds, "training seeds (one sweep task each; reduce keeps the best on the selection rollouts)",
             all({not_empty_list(), check::numbers(true, 9.2e18)}));
  t.add("basevec.holdout_fraction", &b.holdout_fraction, "share of rollouts (by a hash of the id) whose positions choose the best epoch", in_unit(true, true));
  t.add("basevec.selection_fraction", &b.selection_fraction, "share of rollouts that choose the best seed", in_unit(false, true));
  t.add("basevec.max_seq_len", &b.max_seq_len, "base sequences longer than this are skipped (recorded)", in_range(2, 10'000'000));
  t.add("basevec.collect_batch_size", &b.collect_batch_size, "`basevec collect`: rollouts per forward batch", in_range(1, 100'000));
  t.add("basevec.cache_topk", &b.cache_topk, "the thinking model's top-K log-probs kept per disagreement position", in_range(1, 10'000));
  t.add_option("basevec.loss", &b.loss, "correction loss: topk (CE of the renormalised top-train_topk distributions) | full (over the cached top-K) | ce (rollout token)");
  t.add("basevec.train_topk", &b.train_topk, "loss topk: tokens of the thinking model's distribution compared", in_range(1, 10'000));
  t.add("basevec.mlp", &b.mlp, "correction: the coefficient MLP (input: the base model's residual at the steering layer)");
  t.add("basevec.mlp_hidden", &b.mlp_hidden, "coefficient MLP: hidden width", in_range(1, 1'000'000));
  t.add_option("basevec.init", &b.init, "correction vectors' init: zeros | random (a random direction of the mean residual norm)");
  t.add("basevec.lr", &b.lr, "correction vectors: Adam learning rate", check::positive_number());
  t.add("basevec.mlp_lr", &b.mlp_lr, "coefficient MLP: Adam learning rate", check::positive_number());
  t.add("basevec.weight_decay", &b.weight_decay, "correction: Adam (decoupled) weight decay", at_least(0.0));
  t.add("basevec.grad_clip", &b.grad_clip, "coefficient MLP: gradient norm clip (0: off)", at_least(0.0));
  t.add("basevec.epochs", &b.epochs, "correction: most epochs", in_range(1, 100'000));
  t.add("basevec.patience", &b.patience, "correction: holdout evaluations without a better KL before stopping", in_range(1, 100'000));
  t.add("basevec.evals_per_epoch", &b.evals_per_epoch, "correction: holdout evaluations per epoch", in_range(1, 1000));
  t.add("basevec.positions_per_category", &b.positions_per_category, "correction: positions per rollout and category per epoch (re-sampled)",
        in_range(1, 1'000'000));
  t.add("basevec.batch_size", &b.batch_size, "correction: rollouts per step, over all ranks", in_range(1, 100'000));
  t.add("basevec.random_controls", &b.random_controls, "same-norm random vector sets in the final evaluation", in_range(0, 1000));
  t.add("basevec.coldness", &b.coldness, "linear: logit multiplier of the cross-entropy (§B.8: 0.7)", check::positive_number());
  t.add("basevec.linear_lr", &b.linear_lr, "linear: Adam learning rate (cosine to 0)", check::positive_number());
  t.add("basevec.linear_epochs", &b.linear_epochs, "linear: most epochs per vector (§B.8: 50)", in_range(1, 100'000));
  t.add("basevec.linear_patience", &b.linear_patience, "linear: epochs without a train-loss gain of 1e-3 before stopping", in_range(1, 100'000));
  t.add("basevec.linear_examples", &b.linear_examples, "linear: training sentences per category (and rollouts for the bias) at most", in_range(1, 100'000'000));
  t.add("basevec.linear_min_words", &b.linear_min_words, "linear: sentences of fewer words are no examples", in_range(1, 1000));
  t.add("basevec.linear_batch_size", &b.linear_batch_size, "linear: examples per step, over all ranks", in_range(1, 100'000));
  Config::Hybrid& h = c.hybrid;
  t.add("hybrid.vectors", &h.vectors, "a `basevec train` task file (<key>.h5), or selected: the set <run.dir>/basevec/selected.json lists for hybrid.method",
        check::not_empty());
  t.add<std::string>("hybrid.method", &h.method, "hybrid.vectors = selected: correction | linear",
                     [](const std::string& m) { return m == "correction" || m == "linear" ? "" : "must be correction or linear"; });
  t.add_list("hybrid.rules", &h.rules, "coefficient rules, a sweep axis: fixed (hybrid.coefficient) | mlp (the set's coefficient MLP) | guardrail (§B.9) | oracle (the thinking model's token: the upper bound)",
             all({not_empty_list(), check::each_option<HybridRule>()}));
  t.add("hybrid.coefficient", &h.coefficient, "fixed rule: the coefficient of the vector", at_least(0.0));
  t.add_list("hybrid.guardrail", &h.guardrail, "guardrail rule: candidate coefficients; the thinking model's most likely candidate token wins",
             all({not_empty_list(), check::numbers(false, 1e6)}));
  t.add_list("hybrid.ablations", &h.ablations, "a sweep axis: none (the hybrid) | only-bias | randcat | randvec | randvec-randcat | randpos",
             all({not_empty_list(), check::each_option<HybridAblation>()}));
  t.add_list("hybrid.layers", &h.layers, "steering layers, a sweep axis (empty: the layer the vectors were trained at)", check::layer_indices());
  t.add_list("hybrid.seeds", &h.seeds, "seeds of the random ablations (one task each)", all({not_empty_list(), check::numbers(true, 9.2e18)}));
  t.add<double>("hybrid.randpos_fraction", &h.randpos_fraction, "randpos: probability a thinking position is steered (-1: the steered share of the matching hybrid task)",
        [](const double& f) { return f == -1 || (f >= 0 && f <= 1) ? std::string() : std::string("must be -1 or in [0, 1]"); });
  t.add("hybrid.answer_prefix", &h.answer_prefix, "forced into both models when the thinking model closes its thinking part (\\n: newline, \\\\: backslash; in double quotes to keep spaces at its ends)");
  t.add("hybrid.max_new_tokens", &h.max_new_tokens, "new tokens per prompt at most (0: generate.max_new_tokens)", at_least(int64_t{0}));
  t.add("hybrid.batch_size", &h.batch_size, "prompts per lockstep batch (0: generate.batch_size)", at_least(int64_t{0}));
  t.add("hybrid.limit", &h.limit, "prompts per dataset at most (0: data.limit)", at_least(int64_t{0}));
  t.add("hybrid.fused", &h.fused, "fixed and mlp rules: run the base's layers after the steering layer once for every row unsteered and shifted "
        "(2n rows; faster where decoding streams weights) instead of rerunning them after a disagreement; the tokens are the same");
  t.add("hybrid.save_text", &h.save_text, "task files keep each prompt's text and per-token records");
}

void declare_thinkedit_options(OptionTable& t, Config& c) {
  Config::ThinkEdit& e = c.thinkedit;
  const auto percent = [](const double& p) { return p >= 0 && p <= 100 ? std::string() : std::string("must be in [0, 100]"); };
  t.add("thinkedit.generations", &e.generations, "probe traces (default <run.dir>/generate/generations.jsonl)");
  t.add_option("thinkedit.split", &e.split, "long and short sets by thinking tokens (thinkedit.long_tokens, short_tokens; §C.2) or by "
               "percentiles of the closed traces' lengths (thinkedit.long_percentile, short_percentile; for models whose traces are short)");
  t.add("thinkedit.long_tokens", &e.long_tokens, "split = tokens: long set, thinking longer than this (§C.2: 1000)", at_least(0.0));
  t.add("thinkedit.short_tokens", &e.short_tokens, "split = tokens: short set, thinking shorter than this (§C.2: 100)", at_least(0.0));
  t.add<double>("thinkedit.long_percentile", &e.long_percentile, "split = percentile: long set above this percentile", percent);
  t.add<double>("thinkedit.short_percentile", &e.short_percentile, "split = percentile: short set below this percentile", percent);
  t.add("thinkedit.batch_size", &e.batch_size, "traces per forward batch", in_range(1, 100'000));
  t.add("thinkedit.direction", &e.direction, "edit: the attn direction file (default <run.dir>/thinkedit/attn.h5)");
  t.add("thinkedit.heads_file", &e.heads_file, "edit: the head scores (default <run.dir>/thinkedit/heads.h5)");
  t.add_list("thinkedit.heads", &e.heads, "edit: auto (the best-scoring heads of thinkedit.heads_file) or layer.head entries, e.g. 21.2,17.7",
             check::not_empty_list());
  t.add("thinkedit.heads_k", &e.heads_k, "edit, heads = auto: this many heads (0: thinkedit.heads_share of all heads)", at_least(int64_t{0}));
  t.add("thinkedit.heads_share", &e.heads_share, "edit, heads = auto, heads_k = 0: this share of all heads (at least one)", in_unit(false, true));
  t.add("thinkedit.weight", &e.weight, "edit: W <- W - weight v v^T W on each selected head's o_proj columns (§C.5: 1)");
  t.add("thinkedit.out", &e.out, "edit: the edited checkpoint directory (default <run.dir>/thinkedit/edited)");
  t.add_option("thinkedit.dtype", &e.dtype, "edit: tensors stored in the source checkpoint's dtypes, or all in float32");
}

void declare_directions_options(OptionTable& t, Config& c) {
  Config::Directions& d = c.directions;
  t.add("directions.a", &d.a, "activations of set A / model A (default <run.dir>/collect/activations.h5)");
  t.add("directions.b", &d.b, "activations of set B (contrast), of the second class (probe) or of model B on the same tokens (cka)");
  t.add_list("directions.hooks", &d.hooks, "hook datasets to use, comma-separated (empty: every hook of the file)", check::no_empty_item());
  t.add("directions.name", &d.name, "contrast: the direction's name in the vectors file", check::not_empty());
  t.add_option("directions.pool", &d.pool, "contrast: the mean over rows, or over each sequence's mean first");
  t.add("directions.normalize", &d.normalize, "contrast: unit-normalise each layer's direction (§E)");
  t.add("directions.compare", &d.compare, "contrast: a vectors file (e.g. vectors/vectors.h5) whose vectors get per-layer cosines");
  t.add_list("directions.classes", &d.classes, "probe with directions.b: the names of the two classes", check::no_empty_item());
  t.add("directions.test_share", &d.test_share, "probe: share of traces held out", in_unit(true, true));
  t.add("directions.l2", &d.l2, "probe: L2 strength (mean cross-entropy + l2/2 |W|^2 on standardised activations)", check::positive_number());
  t.add("directions.max_iter", &d.max_iter, "probe: L-BFGS iterations at most", in_range(1, 100'000));
  t.add("directions.min_per_class", &d.min_per_class, "probe: training rows each class needs at least", in_range(1, 1'000'000));
  t.add("directions.bootstrap", &d.bootstrap, "probe: cluster-bootstrap resamples of the held-out traces", in_range(10, 1'000'000));
  t.add("directions.seed", &d.seed, "held-out split, shuffled-label control, bootstrap and the CKA subsample");
  t.add("directions.top_k", &d.top_k, "lens: top tokens kept per layer", in_range(1, 100));
  t.add("directions.lens_rows", &d.lens_rows, "lens: rows written to lens_top.jsonl", at_least(int64_t{0}));
  t.add("directions.batch_rows", &d.batch_rows, "lens: rows per unembedding batch", in_range(1, 1'000'000));
  t.add("directions.cka_rows", &d.cka_rows, "cka: rows used at most (a seeded subsample above this; memory grows with its square)", in_range(4, 65'536));
  t.add_option("directions.cka_kernel", &d.cka_kernel, "cka: linear CKA, or linear and RBF");
  t.add("directions.rbf_sigma", &d.rbf_sigma, "cka: RBF bandwidth in units of the median pairwise distance", check::positive_number());
  t.add("directions.direction", &d.direction, "orthogonalize, intervene mode direction: a vectors file (e.g. directions/contrast.h5)");
  t.add("directions.vector", &d.vector, "its vector's name (empty: the file's only name, else directions.name)");
  t.add("directions.layer", &d.layer, "its layer (-1: the file's only layer)", at_least(int64_t{-1}));
  t.add("directions.out", &d.out, "orthogonalize: the checkpoint directory (default <run.dir>/directions/orthogonalized)");
  t.add_option("directions.dtype", &d.dtype, "orthogonalize: tensors stored in the source checkpoint's dtypes, or all in float32");
}

void declare_intervene_options(OptionTable& t, Config& c) {
  Config::Intervene& v = c.intervene;
  t.add_list("intervene.modes", &v.modes, "zero | mean | noise (ablate the site) | patch (from the source run) | direction (project "
             "directions.direction out at every layer), comma-separated", check::all({check::not_empty_list(), check::each_option<InterveneMode>()}));
  t.add_list("intervene.layers", &v.layers, "layers to intervene at (empty: all)", check::layer_indices());
  t.add_option("intervene.site", &v.site, "the hook whose activation is replaced");
  t.add_option("intervene.positions", &v.positions, "every position, the prompt's last token, or the tokens of the prompt's spans "
               "(intervene.spans_field; patching then needs source and prompt of the same length)");
  t.add("intervene.spans_field", &v.spans_field, "positions = spans: the JSONL field with spans [{begin, end, label}] in code points of the prompt text",
        check::not_empty());
  t.add("intervene.noise_std", &v.noise_std, "noise: N(0, noise_std^2) replaces the activation (§E: 0.1)", check::positive_number());
  t.add("intervene.seed", &v.seed, "noise draws: one stream per (seed, prompt id)");
  t.add("intervene.source_field", &v.source_field, "patch: the JSONL field with each prompt's source (clean) prompt");
  t.add("intervene.source_model", &v.source_model, "patch: a checkpoint run on the same prompt instead (the same tokenizer)");
  t.add("intervene.answer_prefix", &v.answer_prefix, "text between the formatted prompt and the answer (\\n: newline; in double quotes to keep spaces)");
  t.add("intervene.batch_size", &v.batch_size, "prompts per forward batch", in_range(1, 100'000));
}

}  // namespace ts::config_detail
