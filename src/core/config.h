// The one Config of thinksteer. Every key is declared once, in config.cpp's option table, with its
// help text and the check of its value; its default is the member's initializer here. Options with a
// fixed set of values are enums whose names are core/options.h's. The same dotted name works as `--section.key value` on the command line and as
// `key = value` under `[section]` in an INI file. Command line beats file beats default; unknown keys
// are errors. Lists are comma-separated.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/options.h"

namespace ts {

struct Config {
  struct Model {
    std::string path;              // HF checkpoint directory (config.json, *.safetensors, tokenizer.json)
    ComputeDType dtype = ComputeDType::auto_;  // auto: fp32 on CPU, checkpoint dtype on GPU
    std::string device = "cpu";    // cpu | cuda | cuda:N
  } model;
  struct Run {
    std::string dir = "runs/default";
    int64_t threads = 0;           // intra-op CPU threads (0: torch default)
  } run;
  struct Data {
    std::string prompts;           // JSONL file, one object per line
    std::string prompt_field = "question";
    std::string id_field = "id";
    std::string answer_field = "answer";
    int64_t limit = 0;             // 0: all
    std::string template_text;     // data.template: the prompt becomes this with {prompt} replaced ("": as is)
  } data;
  struct Generate {
    int64_t max_new_tokens = 256;
    double temperature = 0.0;      // 0: greedy
    double top_p = 1.0;
    int64_t top_k = 0;             // 0: off
    uint64_t seed = 0;             // sampling stream = f(seed, prompt id, step)
    int64_t batch_size = 8;
    std::vector<std::string> stop; // stop strings
    ChatFormat chat_format = ChatFormat::deepseek_r1;
    std::string system;            // system prompt (chat formats that take one)
  } generate;
  struct Parallel {                // ranks = data-parallel replicas x pipeline stages (dist/runtime.h)
    int64_t pipeline_stages = 1;   // P: decoder layers split into P contiguous ranges on P ranks
    int64_t micro_batches = 0;     // micro-batches per batch in a pipeline (0: P, so stages overlap)
    double timeout_seconds = 600;  // NCCL operations that take longer abort the job
    double term_grace_seconds = 20;  // after SIGTERM, exit (code 75) at the latest this much later
  } parallel;
  struct Output {                  // HDF5 outputs
    StoreDType dtype = StoreDType::float32;  // activations (bfloat16 stored as uint16, encoding attribute)
    int64_t compression = 0;       // gzip level 0..9 (needs an HDF5 build with parallel filtered writes)
    int64_t buffer_mb = 256;       // collect: rows buffered per rank before a collective write
  } output;
  struct Collect {
    CollectSource source = CollectSource::prompts;  // prompts (data.prompts, chat-formatted) | generations (prompt + generated tokens)
    std::string input;               // generations JSONL (default <run.dir>/generate/generations.jsonl)
    std::vector<std::string> hooks = {"blocks.*.hook_resid_post"};  // TransformerLens names; * = every layer in collect.layers
    std::vector<std::string> layers; // layers for * (empty: all)
    CollectPositions positions = CollectPositions::all;  // spans: the mean over each span
    std::string spans_field = "spans";  // JSONL field: [{"begin":, "end":, "label":}] code-point ranges of the prompt text
    std::string spans;             // generations without spans_field: annotate's spans (default <run.dir>/annotate/spans.h5)
    int64_t batch_size = 8;
  } collect;
  struct Annotate {                // behaviour spans of traces (stages/annotate.cpp)
    AnnotatorKind annotator = AnnotatorKind::lexicon;  // lexicon (built in, offline) | toy (planted-truth templates) | llm (annotate/llm.h) | taxonomy (an SAE, §B.7)
    std::string taxonomy_sae;        // annotator = taxonomy: an SAE export directory of `thinksteer titles` (<run.dir>/titles/<key>)
    std::string taxonomy_sentences;  // annotator = taxonomy: the sentences file it classifies (default <run.dir>/sentences/sentences.h5)
    std::string lexicon;             // lexicon file (empty: configs/annotate/lexicon.txt, compiled in)
    std::string input;               // JSONL of traces (default <run.dir>/generate/generations.jsonl)
    std::string text_field = "text"; // JSONL field holding a trace's text
    std::string id_field = "id";     // JSONL field holding a trace's id
    AnnotatePart part = AnnotatePart::thinking;  // thinking: between <think> and </think>, if present
    // annotator = llm: an OpenAI-compatible endpoint, or (endpoint empty) a local checkpoint
    std::string llm_endpoint;        // base URL (.../v1) or .../chat/completions; empty: llm_model_path
    std::string llm_model;           // the "model" sent to the endpoint
    std::string llm_model_path;      // local checkpoint directory (generation on model.device, model.dtype)
    ChatFormat llm_chat_format = ChatFormat::chatml;  // local checkpoint
    std::string llm_api_key_env = "OPENAI_API_KEY";  // environment variable holding the endpoint's API key
    int64_t llm_max_tokens = 4096;   // reply tokens at most
    double llm_timeout_seconds = 300;  // per HTTP request
    int64_t llm_retries = 3;         // further attempts after a failed request (docs/algorithms.md §A.3: 3)
    double llm_retry_seconds = 20;   // back-off: retry k waits llm_retry_seconds * 2^(k-1) (§A.3: 20 s)
    int64_t llm_concurrency = 8;     // HTTP requests in flight per rank, or prompts per local generation batch
    double llm_max_failed_fraction = 0.1;  // more traces than this share without a reply: exit 1, nothing written
  } annotate;
  struct Vectors {                 // difference-of-means steering vectors (stages/vectors.cpp, docs/algorithms.md §A.4)
    std::string generations;         // generations JSONL (default <run.dir>/generate/generations.jsonl)
    std::string spans;               // `annotate` spans of those generations (default <run.dir>/annotate/spans.h5)
    std::string hook = "blocks.*.hook_resid_post";  // measured and applied here; * = every layer in vectors.layers
    std::vector<std::string> layers; // layers for * (empty: all)
    DomWindow window = DomWindow::s1;  // s1 (preceding token + first 10 span tokens) | whole-span
    bool rescale = true;             // features rescaled per layer to the overall mean's norm (§A.4 step 5)
    std::vector<std::string> labels; // behaviours (empty: every label of the spans file)
    int64_t batch_size = 8;          // traces per forward batch
    bool gguf = false;               // also one llama.cpp control vector per label
    GgufLayerMap gguf_layer_map = GgufLayerMap::same_block;  // io/vectors.h; same-block: llama.cpp adds it where it was measured
  } vectors;
  struct Sentences {               // sentence activations for the taxonomy (stages/sentences.cpp, docs/algorithms.md §B.3)
    std::string generations;         // generations JSONL (default <run.dir>/generate/generations.jsonl)
    std::string reference;           // optional `annotate` spans of those generations: each sentence gets the covering span's label
    std::string hook = "blocks.*.hook_resid_post";  // * = every layer in sentences.layers
    std::vector<std::string> layers; // layers for * (empty: all)
    int64_t min_words = 3;           // sentences of fewer words are dropped (§B.3)
    SentencePosition position = SentencePosition::mean;  // mean: over [token before, token after) (§B.3); last_token: at token_end - 1 (§B.7)
    int64_t batch_size = 8;          // traces per forward batch
  } sentences;
  struct Attribute {               // attribution patching to choose steering layers (stages/attribute.cpp, docs/algorithms.md §A.7)
    std::string generations;         // generations JSONL (default <run.dir>/generate/generations.jsonl)
    std::string spans;               // `annotate` spans of those generations (default <run.dir>/annotate/spans.h5)
    std::string vectors;             // `vectors` output (default <run.dir>/vectors/vectors.h5)
    AttributeMetric metric = AttributeMetric::paper;  // paper (the gradient §A.7's code computes) | logprob (log p of the observed next token)
    AttributeMode mode = AttributeMode::trace;  // trace (one forward + one backward per batch of traces) | per-span (§A.7's loop)
    std::vector<std::string> labels; // behaviours (empty: every feature vector with spans)
    std::vector<std::string> layers; // layers (empty: every layer of the vectors)
    int64_t n_examples = 50;         // the first N traces with spans (§A.7: 50); 0 = all
    int64_t batch_size = 4;          // traces per forward batch (mode trace)
    int64_t exclude_first = -1;      // layers left out at the start; -1: auto (embedding-aligned, at least exclude_first_fraction)
    double exclude_first_fraction = 0.1;  // auto: at least ceil(fraction * n_layer) first layers
    double embed_cos = 0.5;          // auto: also every leading layer whose vector has max |cos| >= this with an embedding row
    int64_t exclude_last = -1;       // layers left out at the end; -1: ceil(0.1 * n_layer)
    int64_t n_select = 2;            // layers selected per behaviour (peaks of mean |effect|)
  } attribute;
  struct Steer {                   // steered generation and its measurements (stages/sweep.cpp, docs/algorithms.md §A.5, §A.6)
    std::string vectors;             // vectors file (default <run.dir>/vectors/vectors.h5): the feature vector named after each behaviour
    std::string attribution;         // attribute's output (default <run.dir>/attribute/attribution.h5), for layers = auto
    bool divide_by_layers = false;   // a vector applied at n layers at once adds coef/n at each
    bool save_text = true;           // keep every generated text in the task files
    // §C.3: a trace still thinking at generate.max_new_tokens gets force_close_text appended and
    // force_close_tokens more tokens, so its answer can be scored (its thinking length stays the cap)
    bool force_close = false;
    std::string force_close_text = "\\n</think>\\n\\nYeah, I think that's right.\\n\\n**Final Answer**\\n";  // config_unescape
    int64_t force_close_tokens = 256;
  } steer;
  struct Sweep {                   // the axes of a steering sweep: one Slurm array task per point (steer/sweep_plan.h)
    SweepKindName kind = SweepKindName::steer;  // which sweep `sweep plan|run` and `reduce` work on (stages/sweep_kind.h)
    std::vector<std::string> datasets;   // prompt sets (data.prompts values; empty: data.prompts)
    std::vector<std::string> vectors = {"backtracking", "uncertainty-estimation", "example-testing", "adding-knowledge"};
    std::vector<std::string> layers = {"auto"};   // auto (attribute's first pick) | selected (each layer it selected) | N | N+M (at once)
    std::vector<std::string> coefficients = {"1", "-1"};
    std::vector<std::string> hooks;      // hook sites (empty: the vectors file's hook_applied)
    std::vector<std::string> ops = {"add"};         // add | project-out
    std::vector<std::string> positions = {"all"};   // all | prompt | generated
    std::vector<std::string> controls = {"none", "random"};  // none (the vector) | random (same-norm random direction per seed)
    std::vector<std::string> seeds = {"0"};
    int64_t random_directions = 1;   // random directions per seed: 1 uses the seed itself, n > 1 seeds 100*seed + j, j < n
    int64_t task_id = -1;            // sweep run: manifest row (-1: $SLURM_ARRAY_TASK_ID); also --task-id
  } sweep;
  struct Taxonomy {                // the taxonomy sweep, sweep.kind = taxonomy (stages/taxonomy_sweep.cpp; docs/algorithms.md §B.4)
    std::string sentences;         // the sentence vectors (default <run.dir>/sentences/sentences.h5)
    std::vector<std::string> layers;                 // layers of that file to cluster (empty: every layer it holds)
    std::vector<std::string> clusters = {"5", "10", "15", "20", "25", "30", "35", "40", "45", "50"};  // K
    std::vector<std::string> methods = {"sae", "kmeans"};  // sae (TopK SAE, §B.4) | kmeans (spherical k-means)
    std::vector<std::string> seeds = {"0"};
    int64_t topk = 3;              // SAE: latents kept per sentence (<= K)
    int64_t batch_size = 512;      // SAE minibatch (all rows when fewer)
    int64_t max_epochs = 300;
    int64_t patience = 10;         // early stopping on the epoch-average loss; the best epoch is kept
    double lr = 0;                 // 0: 2e-4 / sqrt(K / 2^14)
    int64_t kmeans_iters = 100;    // k-means: Lloyd iterations per init (best of kmeans_inits)
    int64_t kmeans_inits = 4;
    int64_t memory_mb = 4096;      // vectors a task may hold in memory; beyond it rows stream from the file
    std::vector<std::string> titles = {"selected"};  // `titles`: selected (every seed of reduce's choice) | all | task keys
    int64_t title_examples = 200;  // representative sentences per cluster: half closest to its direction, half random (§B.5)
    int64_t title_words = 8;       // distinctive terms kept per cluster (offline titles)
    // The §B.5/§B.6 judge (stages/taxonomy_judge.h): none, or llm on annotate.llm_endpoint / llm_model
    TaxonomyJudge judge = TaxonomyJudge::none;
    int64_t judge_repetitions = 3;   // independent title sets per task (§B.5: 3; 5 in the paper's run script)
    int64_t judge_autograder = 100;  // sentences graded per cluster and repetition, 20% of them the cluster's (§B.6)
    int64_t judge_completeness = 200;  // sentences rated 0-10 against their cluster per repetition (§B.6)
    int64_t judge_traces = 3;        // whole traces shown in each title prompt
  } taxonomy;
  struct Basevec {                 // steering vectors trained on the base model (docs/algorithms.md §B.8, §B.10; stages/basevec_*.cpp)
    std::string base_model;        // the base checkpoint; model.path is the thinking model
    std::string generations;       // the thinking model's rollouts (default <run.dir>/generate/generations.jsonl)
    std::string reference_spans;   // optional `annotate` spans of the rollouts: each disagreement position gets the label of the thinking model's next token
    std::string sae;               // the thinking model's taxonomy SAE: an export directory of `titles`; its layer is the SAE layer
    std::string base_prompt = "same";  // same (the thinking model's own prompt text) | qa_instr (§B.10) | v1 (§B.8) | a template with {question}
    int64_t layer = -1;            // steering layer: trained and applied at blocks.{layer}.hook_resid_post
    int64_t sae_layer = -1;        // the SAE's layer as the preset states it (-1: the export's); an SAE of another layer is refused
    std::vector<std::string> methods = {"correction"};  // correction (§B.10) | linear (§B.8)
    std::vector<std::string> seeds = {"42", "43", "44"};
    double holdout_fraction = 0.1;   // rollouts (by a hash of the id) whose positions choose the best epoch
    double selection_fraction = 0.1; // rollouts that choose the best seed (reduce)
    int64_t max_seq_len = 4096;    // longer base sequences are skipped (recorded)
    int64_t collect_batch_size = 4;  // rollouts per forward batch of `basevec collect`
    int64_t cache_topk = 50;       // the thinking model's top-K log-probs kept per disagreement position
    BasevecLoss loss = BasevecLoss::topk;  // correction: topk (renormalised top-train_topk CE) | full (over the cached top-K) | ce (rollout token)
    int64_t train_topk = 3;
    bool mlp = true;               // correction: the coefficient MLP (shared trunk, per-category head, softplus)
    int64_t mlp_hidden = 512;
    BasevecInit init = BasevecInit::zeros;  // correction: zeros | random (a random direction of the mean residual norm)
    double lr = 1e-2;              // correction vectors
    double mlp_lr = 1e-3;
    double weight_decay = 0.01;
    double grad_clip = 1.0;        // MLP gradient norm (0: off)
    int64_t epochs = 10;
    int64_t patience = 5;          // evaluations without a better holdout KL before stopping
    int64_t evals_per_epoch = 4;
    int64_t positions_per_category = 64;  // per rollout, category and epoch (re-sampled each epoch)
    int64_t batch_size = 8;        // rollouts (correction) or sentences (linear) per step, over all ranks
    int64_t random_controls = 5;   // same-norm random vector sets the final evaluation compares with
    // linear (§B.8)
    double coldness = 0.7;         // logit multiplier of the CE
    double linear_lr = 1e-2;
    int64_t linear_epochs = 50;
    int64_t linear_patience = 10;  // epochs without a train-loss gain of 1e-3
    int64_t linear_examples = 2048;  // training sentences per category (and rollouts for the bias) at most
    int64_t linear_min_words = 7;  // shorter sentences are no examples (the bias needs 20 words of thinking)
    int64_t linear_batch_size = 4;
  } basevec;
  struct Hybrid {                  // the hybrid model (docs/algorithms.md "The hybrid model"; hybrid/lockstep.h, stages/hybrid_*.cpp)
    std::string vectors = "selected";  // a `basevec train` task file (<key>.h5), or selected: <run.dir>/basevec/selected.json's set of hybrid.method
    std::string method = "correction";  // selected: which method's chosen seed
    std::vector<std::string> rules = {"fixed", "mlp"};  // coefficient rules (sweep axis): fixed | mlp | guardrail
    double coefficient = 1.0;      // fixed rule
    std::vector<std::string> guardrail = {"0.5", "0.6", "0.7", "0.8", "0.9", "1.0"};  // guardrail candidates (§B.9)
    std::vector<std::string> ablations = {"none", "only-bias", "randcat", "randvec", "randvec-randcat", "randpos"};  // sweep axis
    std::vector<std::string> layers;  // steering layers (sweep axis); empty: the vectors' own layer
    std::vector<std::string> seeds = {"0"};  // random ablations: one task per seed
    double randpos_fraction = -1;  // randpos: probability a thinking position is steered (-1: the steered share of the matching hybrid row)
    std::string answer_prefix = "\"\\n\\nFinal answer: \"";  // forced when the thinking model closes its thinking part (in quotes: a trailing space survives the INI; \\n: newline)
    int64_t max_new_tokens = 0;    // 0: generate.max_new_tokens
    int64_t batch_size = 0;        // 0: generate.batch_size
    int64_t limit = 0;             // prompts per dataset (0: data.limit)
    bool save_text = true;         // task files keep each prompt's text and per-token records
    bool fused = true;             // fixed / mlp rules: the fused step (hybrid/lockstep.h Options::fused); false: the rerun
  } hybrid;
  struct ThinkEdit {               // ThinkEdit (docs/algorithms.md "ThinkEdit"; stages/thinkedit_*.cpp)
    std::string generations;       // probe traces (default <run.dir>/generate/generations.jsonl)
    ThinkEditSplit split = ThinkEditSplit::tokens;  // tokens: the paper's thresholds | percentile (of the closed traces' lengths)
    double long_tokens = 1000;     // split = tokens: long set, thinking > this many tokens (§C.2)
    double short_tokens = 100;     //   short set, thinking < this many tokens
    double long_percentile = 80;   // split = percentile: long set above this percentile of the lengths
    double short_percentile = 20;  //   short set below this one
    int64_t batch_size = 4;        // traces per forward batch
    std::string direction;         // edit: the attn direction file (default <run.dir>/thinkedit/attn.h5)
    std::string heads_file;        // edit: the head scores (default <run.dir>/thinkedit/heads.h5)
    std::vector<std::string> heads = {"auto"};  // edit: auto (the top of heads_file) or "layer.head" entries (e.g. a paper's list)
    int64_t heads_k = 0;           // auto: this many heads (0: heads_share of all heads, at least 1)
    double heads_share = 0.04;     // auto with heads_k = 0 (§C.4: ~4% of the heads)
    double weight = 1.0;           // W <- W - weight * v v^T W on each head's o_proj slice (§C.5)
    std::string out;               // the edited checkpoint directory (default <run.dir>/thinkedit/edited)
    EditDType dtype = EditDType::source;  // source (each tensor's dtype) | float32
  } thinkedit;
  struct Directions {              // reasoning-direction analyses (docs/directions.md; stages/directions_*.cpp)
    std::string a;                 // activations of set A / model A (default <run.dir>/collect/activations.h5)
    std::string b;                 // contrast: set B; probe: the second class; cka: model B ("": A against itself)
    std::vector<std::string> hooks;  // the hook datasets used (empty: all of the file)
    std::string name = "contrast";   // contrast: the direction's name in the vectors file
    DirectionPool pool = DirectionPool::rows;  // mean over rows, or over each sequence's mean first
    bool normalize = true;         // contrast: unit-normalise each layer's direction (§E)
    std::string compare;           // contrast: a vectors file whose vectors get per-layer cosines
    std::vector<std::string> classes = {"a", "b"};  // probe with directions.b: the two class names
    double test_share = 0.25;      // probe: share of traces held out
    double l2 = 1e-3;              // probe: L2 strength (objective: mean cross-entropy + l2/2 |W|^2)
    int64_t max_iter = 300;        // probe: L-BFGS iterations at most
    int64_t min_per_class = 5;     // probe: training rows each class needs at least
    int64_t bootstrap = 1000;      // probe: cluster-bootstrap resamples of the held-out traces
    uint64_t seed = 0;             // split, shuffled control, bootstrap, CKA subsample
    int64_t top_k = 5;             // lens: top tokens per layer kept
    int64_t lens_rows = 16;        // lens: rows written to lens_top.jsonl
    int64_t batch_rows = 256;      // lens: rows per unembedding batch
    int64_t cka_rows = 2048;       // cka: rows used at most (a seeded subsample above this)
    CkaKernel cka_kernel = CkaKernel::linear;
    double rbf_sigma = 1.0;        // cka: RBF bandwidth in units of the median distance
    std::string direction;         // orthogonalize, intervene mode direction: a vectors file
    std::string vector;            // its name ("": the only name, else directions.name)
    int64_t layer = -1;            // its layer (-1: the only layer)
    std::string out;               // orthogonalize: the checkpoint directory (default <run.dir>/directions/orthogonalized)
    EditDType dtype = EditDType::source;
  } directions;
  struct Intervene {               // the intervention sweep (sweep.kind = intervene; docs/directions.md)
    std::vector<std::string> modes = {"zero", "mean", "noise"};  // zero | mean | noise | patch | direction
    std::vector<std::string> layers;  // layers to intervene at (empty: all)
    SweepHook site = SweepHook::resid_post;
    PatchPositions positions = PatchPositions::all;
    double noise_std = 0.1;        // noise: N(0, noise_std^2) replaces the activation (§E)
    uint64_t seed = 0;             // noise draws: a stream per (seed, prompt id)
    std::string spans_field = "spans";  // positions = spans: the JSONL field with [{begin, end, label}] code points of the prompt
    std::string source_field;      // patch: the JSONL field with each prompt's source (clean) prompt
    std::string source_model;      // patch: a checkpoint run on the same prompt instead (same tokenizer)
    std::string answer_prefix;     // text between the formatted prompt and the answer (\\n: newline)
    int64_t batch_size = 8;        // prompts per forward batch
  } intervene;
  struct Reduce {                  // gathering a sweep's tasks (stages/reduce.cpp)
    bool allow_partial = false;      // write a summary (marked partial) and exit 0 when tasks are missing
    int64_t bootstrap = 2000;        // bootstrap resamples of the prompts for the intervals
    double ci = 0.95;                // interval level
    uint64_t seed = 0;               // bootstrap seed
  } reduce;
  struct Toy {                     // planted-truth reasoning world (src/toy)
    uint64_t seed = 0;             // problem i depends only on (seed, i)
    int64_t n_problems = 2000;
    ToyStyle style = ToyStyle::thinker;
    ToyGates thinker_gates = ToyGates::digits;  // the thinker's own behaviours: digit gates, or hidden coins (toy/corpus.h)
    double base_knows = 0;         // base style: behaviours by hidden coins of this probability (toy/corpus.h)
    double thorough = 0;           // thinker: share of traces (a hidden per-trace coin) that test every step (toy/corpus.h)
    double dispositions = 0;       // thinker: per-trace hidden coins of this probability for three behaviour modes (toy/corpus.h)
    bool disposition_cues = false; // thinker: the question names the trace's dispositions (toy/corpus.h)
    double soft_gates = 0;         // thinker: each digit-gate choice overruled by a hidden coin (toy/corpus.h)
    bool cue_levels = false;       // thinker: per-trace rates in tenths, shown in the question (toy/corpus.h)
    double echoes = 0;             // thinker: probability that a behaviour sentence is followed by a second one (toy/corpus.h)
    bool plain_echoes = false;     // thinker: echoes of backtracking and testing written without arithmetic (toy/corpus.h)
    double echo_again = 0;         // thinker: probability that an echo is followed by a third sentence (toy/corpus.h)
    bool plain_backtracking = false;  // thinker: a slip's correction is a plain remark, then the step again (toy/corpus.h)
    double thinker_corrects = 1;   // thinker: probability that a slip is corrected, by a hidden coin (toy/corpus.h)
    double rechecks = 0;           // thinker: digit-gate rate of a right step redone after a backtracking remark (toy/corpus.h)
    double slip_rate = 0.4;        // rates (toy/corpus.h): share of carry/borrow steps written wrong
    double example_testing_rate = 0.2;  // ... and shares of deduction steps followed by each behaviour
    double uncertainty_rate = 0.2;
    double adding_knowledge_rate = 0.2;
    int64_t min_steps = 1;         // arithmetic steps per problem, 1..4
    int64_t max_steps = 4;
    double test_fraction = 0.1;    // share of problems in the test split (by a hash of the id)
    int64_t vocab_size = 1024;     // toy tokenizer: model tokens + added tokens
  } toy;
  struct Train {                   // toy train: a Qwen2 model trained from scratch on the toy corpus (stages/toy_train.cpp)
    std::string tokenizer;         // directory with tokenizer.json (default <run.dir>/toy/tokenizer)
    int64_t d_model = 128;         // D
    int64_t n_layer = 4;           // L
    int64_t n_head = 4;            // H
    int64_t n_kv_head = 2;         // K (GQA when K < H)
    int64_t d_mlp = 384;           // F
    int64_t max_position = 1024;   // context; longer training sequences are an error
    int64_t steps = 2000;          // optimizer steps
    int64_t batch_size = 32;       // sequences per step, over all ranks
    double lr = 3e-3;              // peak learning rate (AdamW), cosine decay to lr * min_lr_ratio
    double min_lr_ratio = 0.1;
    int64_t warmup_steps = 100;    // linear warm-up
    double weight_decay = 0.1;     // decoupled, on matrices only (not norms, biases)
    double beta1 = 0.9;
    double beta2 = 0.95;
    double grad_clip = 1.0;        // global gradient norm (0: off)
    double init_std = 0.02;        // normal init of matrices and embeddings
    std::string init_from;         // a checkpoint of the same shape to start from (fine-tuning; empty: init_std)
    uint64_t seed = 0;             // init and data order
    int64_t checkpoint_every = 200;  // steps between resumable state saves (0: only on stop)
    SaveDType save_dtype = SaveDType::bfloat16;  // dtype of the written checkpoint
    double push_share = 0;         // share of sequences given a random push as training noise (toy_train.cpp)
    double push_max = 2;           // a push's norm: uniform in [0, push_max] times the sequence's mean activation norm
  } train;
  struct Log {
    LogLevel level = LogLevel::info;
    double progress_seconds = 30;  // batch logs: one progress line per interval
  } log;

  std::string config_file;         // the --config file, if any
};

// Parses argv for `subcommand` (argv[0] is the subcommand name), which reads the config `sections`
// (the subcommand table, stages/stage_list.inc). Returns false when --help (the sections' options) was
// printed. Throws InputError on unknown keys, bad values, or an unreadable config file.
bool config_parse(int argc, const char* const* argv, const std::string& subcommand, const std::vector<std::string>& sections, Config& cfg);

// The resolved config as INI text (every key, defaults included), restricted to `sections` if given.
std::string config_to_ini(const Config& cfg, const std::vector<std::string>& sections = {});

// Checks value ranges; throws InputError naming the key and where its value came from
// (`source_of(key)`: "<command line>", the INI file, or "<default>").
void config_validate(const Config& cfg, const std::function<std::string(const std::string&)>& source_of = {});

// A text value as the config writes it: surrounding double quotes dropped (they keep spaces at its
// ends), \n a newline, \t a tab, \\ a backslash (hybrid.answer_prefix, steer.force_close_text).
std::string config_unescape(std::string_view value);

// Help text for the given config sections ("model", "run", ...).
std::string config_help(const std::vector<std::string>& sections);

}  // namespace ts
