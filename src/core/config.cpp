#include "core/config.h"

#include <algorithm>
#include <cmath>
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "tokenizer/chat_format.h"

namespace po = boost::program_options;

namespace ts {
namespace {

std::string to_text(const std::string& v) { return v; }
std::string to_text(bool v) { return v ? "true" : "false"; }
std::string to_text(int64_t v) { return std::to_string(v); }
std::string to_text(uint64_t v) { return std::to_string(v); }
std::string to_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
std::string to_text(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out;
}

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty() || !out.empty()) out.push_back(cur);
  for (auto& item : out) {
    auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
  }
  return out;
}

// The option table: one entry per key, bound to its Config field.
struct OptionTable {
  std::map<std::string, po::options_description> sections;
  std::map<std::string, std::string> section_help;
  std::vector<std::pair<std::string, std::function<std::string()>>> printers;
  std::vector<std::function<void(const po::variables_map&)>> finishers;

  template <class T>
  void add(const std::string& key, T* field, const char* help) {
    const std::string section = key.substr(0, key.find('.'));
    auto& desc = section_desc(section);
    desc.add_options()(key.c_str(), po::value<T>(field)->default_value(*field, to_text(*field)), help);
    printers.emplace_back(key, [field] { return to_text(*field); });
  }
  void add_list(const std::string& key, std::vector<std::string>* field, const char* help) {
    const std::string section = key.substr(0, key.find('.'));
    auto& desc = section_desc(section);
    desc.add_options()(key.c_str(), po::value<std::string>()->default_value(to_text(*field)), help);
    printers.emplace_back(key, [field] { return to_text(*field); });
    finishers.emplace_back([key, field](const po::variables_map& vm) { *field = split_csv(vm[key].as<std::string>()); });
  }
  po::options_description& section_desc(const std::string& section) {
    auto it = sections.find(section);
    if (it == sections.end()) it = sections.emplace(section, po::options_description("[" + section + "] " + section_help[section])).first;
    return it->second;
  }
};

OptionTable make_table(Config& c) {
  OptionTable t;
  t.section_help = {{"model", "checkpoint"}, {"run", "run directory and resources"}, {"data", "input prompts"},
                    {"generate", "generation"}, {"parallel", "ranks: data parallel x pipeline stages"},
                    {"output", "HDF5 outputs"}, {"collect", "activation collection"}, {"annotate", "behaviour annotation"}, {"vectors", "difference-of-means steering vectors"}, {"attribute", "attribution patching to choose layers"}, {"steer", "steered generation"}, {"sweep", "steering sweep axes"}, {"reduce", "gathering a sweep"}, {"toy", "toy reasoning world"}, {"train", "toy model training"}, {"log", "logging and progress"}};
  t.add("model.path", &c.model.path, "HF checkpoint directory (config.json, safetensors, tokenizer.json)");
  t.add("model.dtype", &c.model.dtype, "compute dtype: auto|float32|bfloat16|float16 (auto: float32 on CPU, the checkpoint's on GPU)");
  t.add("model.device", &c.model.device, "cpu|cuda|cuda:N");
  t.add("run.dir", &c.run.dir, "run directory: every output of the run goes here");
  t.add("run.threads", &c.run.threads, "CPU intra-op threads (0: library default)");
  t.add("data.prompts", &c.data.prompts, "prompts: a JSONL file, one object per line");
  t.add("data.prompt_field", &c.data.prompt_field, "JSONL field holding the prompt text");
  t.add("data.id_field", &c.data.id_field, "JSONL field holding the prompt id (absent: line number)");
  t.add("data.answer_field", &c.data.answer_field, "JSONL field holding the reference answer (optional)");
  t.add("data.limit", &c.data.limit, "use only the first N prompts (0: all)");
  t.add("generate.max_new_tokens", &c.generate.max_new_tokens, "new tokens per prompt at most");
  t.add("generate.temperature", &c.generate.temperature, "sampling temperature (0: greedy)");
  t.add("generate.top_p", &c.generate.top_p, "nucleus sampling mass (1: off)");
  t.add("generate.top_k", &c.generate.top_k, "top-k sampling (0: off)");
  t.add("generate.seed", &c.generate.seed, "sampling seed; each prompt's stream depends only on (seed, prompt id)");
  t.add("generate.batch_size", &c.generate.batch_size, "prompts per batch");
  t.add_list("generate.stop", &c.generate.stop, "stop strings, comma-separated (generation also stops at EOS)");
  t.add("generate.chat_format", &c.generate.chat_format, "prompt format: raw|deepseek_r1|chatml|llama3");
  t.add("generate.system", &c.generate.system, "system prompt for chat formats that take one");
  t.add("parallel.pipeline_stages", &c.parallel.pipeline_stages, "pipeline stages P (ranks = data-parallel replicas x P); each stage holds a contiguous range of layers");
  t.add("parallel.micro_batches", &c.parallel.micro_batches, "micro-batches per batch in a pipeline (0: one per stage)");
  t.add("parallel.timeout_seconds", &c.parallel.timeout_seconds, "GPU collectives (NCCL) that take longer abort the job");
  t.add("parallel.term_grace_seconds", &c.parallel.term_grace_seconds, "after SIGTERM a rank exits (code 75) at the latest this many seconds later");
  t.add("output.dtype", &c.output.dtype, "stored activations: float32|float16|bfloat16 (bfloat16 as uint16 bits, attribute encoding)");
  t.add("output.compression", &c.output.compression, "gzip level for HDF5 datasets, 0..9 (needs parallel filtered writes in the HDF5 build)");
  t.add("output.buffer_mb", &c.output.buffer_mb, "collect: MB of rows a rank buffers before the ranks write them collectively");
  t.add("collect.source", &c.collect.source, "prompts (data.prompts, chat-formatted) | generations (prompt + generated tokens of collect.input)");
  t.add("collect.input", &c.collect.input, "generations JSONL for source=generations (default <run.dir>/generate/generations.jsonl)");
  t.add_list("collect.hooks", &c.collect.hooks, "hook names (TransformerLens), comma-separated; blocks.*.X expands over collect.layers");
  t.add_list("collect.layers", &c.collect.layers, "layers for blocks.* hooks (empty: all)");
  t.add("collect.positions", &c.collect.positions, "all|last|prompt|generated|spans (spans: mean over each span of collect.spans_field)");
  t.add("collect.spans_field", &c.collect.spans_field, "JSONL field with spans [{begin, end, label}] in code points of the prompt text");
  t.add("collect.batch_size", &c.collect.batch_size, "sequences per forward batch");
  t.add("annotate.annotator", &c.annotate.annotator,
        "lexicon (built-in rules, offline and deterministic) | toy (the toy world's planted-truth templates) | llm (ALGORITHMS §A.3 prompt "
        "on an OpenAI-compatible endpoint or a local checkpoint)");
  t.add("annotate.lexicon", &c.annotate.lexicon, "lexicon rules file (empty: the built-in configs/annotate/lexicon.txt)");
  t.add("annotate.input", &c.annotate.input, "JSONL of traces (default <run.dir>/generate/generations.jsonl)");
  t.add("annotate.text_field", &c.annotate.text_field, "JSONL field holding a trace's text");
  t.add("annotate.id_field", &c.annotate.id_field, "JSONL field holding a trace's id (a string or an integer)");
  t.add("annotate.part", &c.annotate.part, "thinking (between <think> and </think>, when present) | all");
  t.add("annotate.llm_endpoint", &c.annotate.llm_endpoint,
        "llm: OpenAI-compatible endpoint, http(s)://host[:port]/v1 (requests go to <endpoint>/chat/completions) or the full "
        ".../chat/completions URL; empty: generate with the local checkpoint annotate.llm_model_path");
  t.add("annotate.llm_model", &c.annotate.llm_model, "llm: the model name sent to the endpoint (required with llm_endpoint)");
  t.add("annotate.llm_model_path", &c.annotate.llm_model_path,
        "llm without an endpoint: local HF checkpoint directory run by thinksteer's engine (greedy; on model.device in model.dtype)");
  t.add("annotate.llm_chat_format", &c.annotate.llm_chat_format, "llm, local checkpoint: chat format of the prompt: raw|deepseek_r1|chatml|llama3");
  t.add("annotate.llm_api_key_env", &c.annotate.llm_api_key_env,
        "llm: name of the environment variable holding the endpoint's API key (unset or empty: no Authorization header); "
        "the key itself never goes in a config file");
  t.add("annotate.llm_max_tokens", &c.annotate.llm_max_tokens, "llm: reply tokens at most (the request's max_tokens; local: new tokens)");
  t.add("annotate.llm_timeout_seconds", &c.annotate.llm_timeout_seconds, "llm endpoint: seconds one request may take, connection included");
  t.add("annotate.llm_retries", &c.annotate.llm_retries,
        "llm endpoint: further attempts after a failed request (connection errors, time-outs, HTTP 408/409/429/5xx, unusable body)");
  t.add("annotate.llm_retry_seconds", &c.annotate.llm_retry_seconds,
        "llm endpoint: back-off; retry k waits llm_retry_seconds * 2^(k-1), or the server's Retry-After when longer");
  t.add("annotate.llm_concurrency", &c.annotate.llm_concurrency, "llm: requests in flight per rank (endpoint), or prompts per generation batch (local)");
  t.add("annotate.llm_max_failed_fraction", &c.annotate.llm_max_failed_fraction,
        "llm: when more than this share of the traces got no reply (request_failed), the stage exits 1 and writes nothing; "
        "otherwise their failures are in problems.jsonl and they have no spans");
  t.add("vectors.generations", &c.vectors.generations, "generations JSONL (default <run.dir>/generate/generations.jsonl)");
  t.add("vectors.spans", &c.vectors.spans, "spans.h5 that `annotate` wrote for those generations (default <run.dir>/annotate/spans.h5)");
  t.add("vectors.hook", &c.vectors.hook, "hook the vectors are measured at and meant for; blocks.*.X expands over vectors.layers");
  t.add_list("vectors.layers", &c.vectors.layers, "layers for a blocks.* hook (empty: all)");
  t.add("vectors.window", &c.vectors.window, "per-span window: s1 (preceding token + first 10 span tokens) | whole-span (preceding token + span minus its last token)");
  t.add("vectors.rescale", &c.vectors.rescale, "rescale each feature vector to the norm of the overall mean at its layer (true|false)");
  t.add_list("vectors.labels", &c.vectors.labels, "behaviours to compute, comma-separated (empty: every label of the spans file)");
  t.add("vectors.batch_size", &c.vectors.batch_size, "traces per forward batch");
  t.add("vectors.gguf", &c.vectors.gguf, "also write one llama.cpp GGUF control vector per label (true|false)");
  t.add("vectors.gguf_layer_map", &c.vectors.gguf_layer_map, "GGUF tensor of resid_post[l]: next-block (direction.{l+1}) | same-block (direction.{l})");
  t.add("attribute.generations", &c.attribute.generations, "generations JSONL (default <run.dir>/generate/generations.jsonl)");
  t.add("attribute.spans", &c.attribute.spans, "spans.h5 of those generations (default <run.dir>/annotate/spans.h5)");
  t.add("attribute.vectors", &c.attribute.vectors, "vectors.h5 of `thinksteer vectors` (default <run.dir>/vectors/vectors.h5)");
  t.add("attribute.metric", &c.attribute.metric, "paper (the gradient the original code computes) | logprob (log p of the observed next token)");
  t.add("attribute.mode", &c.attribute.mode, "trace (one forward + backward per batch of traces) | per-span (one pass per span, as the original)");
  t.add_list("attribute.labels", &c.attribute.labels, "behaviours, comma-separated (empty: every feature vector)");
  t.add_list("attribute.layers", &c.attribute.layers, "layers, comma-separated (empty: every layer of the vectors)");
  t.add("attribute.n_examples", &c.attribute.n_examples, "the first N traces with spans (0: all)");
  t.add("attribute.batch_size", &c.attribute.batch_size, "traces per forward batch (mode trace)");
  t.add("attribute.exclude_first", &c.attribute.exclude_first, "first layers never selected (-1: auto, embedding-aligned)");
  t.add("attribute.exclude_first_fraction", &c.attribute.exclude_first_fraction, "auto exclude_first: at least this share of the layers");
  t.add("attribute.embed_cos", &c.attribute.embed_cos, "auto exclude_first: also leading layers whose vector has max |cos| >= this with an embedding row");
  t.add("attribute.exclude_last", &c.attribute.exclude_last, "last layers never selected (-1: ceil(0.1 * layers))");
  t.add("attribute.n_select", &c.attribute.n_select, "layers selected per behaviour (peaks of mean |effect|)");
  t.add("steer.vectors", &c.steer.vectors, "vectors file: the feature vector named after each behaviour (default <run.dir>/vectors/vectors.h5)");
  t.add("steer.attribution", &c.steer.attribution, "attribute's attribution.h5, read for sweep.layers = auto (default <run.dir>/attribute/attribution.h5)");
  t.add("steer.divide_by_layers", &c.steer.divide_by_layers, "a vector applied at n layers at once adds coef/n at each (true|false)");
  t.add("steer.save_text", &c.steer.save_text, "keep every generated text in the task files (true|false)");
  t.add_list("sweep.datasets", &c.sweep.datasets, "prompt sets, comma-separated data.prompts values (empty: data.prompts)");
  t.add_list("sweep.vectors", &c.sweep.vectors, "behaviours whose vectors are applied, comma-separated");
  t.add_list("sweep.layers", &c.sweep.layers, "layers: auto (attribute's first pick per behaviour), selected (every layer it selected), N, or N+M (several at once), comma-separated");
  t.add_list("sweep.coefficients", &c.sweep.coefficients, "steering coefficients c (either sign), comma-separated");
  t.add_list("sweep.hooks", &c.sweep.hooks, "hook sites (hook_resid_post, hook_resid_pre, hook_resid_mid, hook_attn_out, hook_mlp_out); empty: the vectors file's");
  t.add_list("sweep.ops", &c.sweep.ops, "add (x + c v) | project-out (x - (x.v^)v^), comma-separated");
  t.add_list("sweep.positions", &c.sweep.positions, "where the intervention applies: all | prompt | generated, comma-separated");
  t.add_list("sweep.controls", &c.sweep.controls, "none (the vector) | random (a same-norm random direction per seed), comma-separated");
  t.add_list("sweep.seeds", &c.sweep.seeds, "random-direction seeds (and sampling seeds when generate.temperature > 0), comma-separated");
  t.add("sweep.task_id", &c.sweep.task_id, "sweep run: the manifest row to run (-1: $SLURM_ARRAY_TASK_ID); also given as --task-id N");
  t.add("reduce.allow_partial", &c.reduce.allow_partial, "with tasks missing: write the summary marked partial and exit 0 (true|false)");
  t.add("reduce.bootstrap", &c.reduce.bootstrap, "bootstrap resamples of the prompts for the intervals");
  t.add("reduce.ci", &c.reduce.ci, "interval level, e.g. 0.95");
  t.add("reduce.seed", &c.reduce.seed, "bootstrap seed");
  t.add("toy.seed", &c.toy.seed, "corpus seed; problem i depends only on (seed, i)");
  t.add("toy.n_problems", &c.toy.n_problems, "number of problems in the toy corpus");
  t.add("toy.style", &c.toy.style, "trace style: thinker (slips corrected by backtracking) | base (direct, slips stay)");
  t.add("toy.slip_rate", &c.toy.slip_rate, "digit gate, in tenths: share of carry/borrow steps written wrong (a slip)");
  t.add("toy.example_testing_rate", &c.toy.example_testing_rate, "digit gate, in tenths: share of steps checked by the inverse operation (thinker)");
  t.add("toy.uncertainty_rate", &c.toy.uncertainty_rate, "digit gate, in tenths: share of steps followed by an uncertainty remark (thinker)");
  t.add("toy.adding_knowledge_rate", &c.toy.adding_knowledge_rate, "digit gate, in tenths: share of steps followed by a recalled fact");
  t.add("toy.min_steps", &c.toy.min_steps, "fewest arithmetic steps per problem (1..4)");
  t.add("toy.max_steps", &c.toy.max_steps, "most arithmetic steps per problem (1..4)");
  t.add("toy.test_fraction", &c.toy.test_fraction, "share of problems in the test split (by a hash of the id)");
  t.add("toy.vocab_size", &c.toy.vocab_size, "toy tokenizer vocabulary (256 bytes + merges + 6 R1 added tokens), 263..65536");
  t.add("train.tokenizer", &c.train.tokenizer, "directory with tokenizer.json and tokenizer_config.json (default <run.dir>/toy/tokenizer)");
  t.add("train.d_model", &c.train.d_model, "model width D");
  t.add("train.n_layer", &c.train.n_layer, "decoder layers L");
  t.add("train.n_head", &c.train.n_head, "attention heads H");
  t.add("train.n_kv_head", &c.train.n_kv_head, "key/value heads K (GQA when K < H; divides H)");
  t.add("train.d_mlp", &c.train.d_mlp, "MLP width F");
  t.add("train.max_position", &c.train.max_position, "context length; a longer training sequence is an error");
  t.add("train.steps", &c.train.steps, "optimizer steps");
  t.add("train.batch_size", &c.train.batch_size, "sequences per step over all ranks (each rank takes an even share)");
  t.add("train.lr", &c.train.lr, "peak AdamW learning rate (linear warm-up, cosine decay)");
  t.add("train.min_lr_ratio", &c.train.min_lr_ratio, "final learning rate as a fraction of train.lr");
  t.add("train.warmup_steps", &c.train.warmup_steps, "linear warm-up steps");
  t.add("train.weight_decay", &c.train.weight_decay, "decoupled weight decay on matrices (not norms or biases)");
  t.add("train.beta1", &c.train.beta1, "AdamW beta1");
  t.add("train.beta2", &c.train.beta2, "AdamW beta2");
  t.add("train.grad_clip", &c.train.grad_clip, "clip the global gradient norm to this (0: off)");
  t.add("train.init_std", &c.train.init_std, "standard deviation of the normal init of matrices and embeddings");
  t.add("train.seed", &c.train.seed, "seed of the init and the data order");
  t.add("train.checkpoint_every", &c.train.checkpoint_every, "steps between resumable state saves (0: only when stopped)");
  t.add("train.save_dtype", &c.train.save_dtype, "dtype of the written HF checkpoint: float32|bfloat16");
  t.add("log.level", &c.log.level, "trace|debug|info|warn|error");
  t.add("log.progress_seconds", &c.log.progress_seconds, "seconds between progress lines in batch logs");
  return t;
}

const std::map<std::string, std::vector<std::string>>& subcommand_sections() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"generate", {"model", "run", "data", "generate", "parallel", "output", "log"}},
      {"collect", {"model", "run", "data", "generate", "collect", "parallel", "output", "log"}},
      {"annotate", {"model", "run", "annotate", "log"}},
      {"vectors", {"model", "run", "vectors", "parallel", "log"}},
      {"attribute", {"model", "run", "attribute", "parallel", "log"}},
      {"steer", {"model", "run", "data", "generate", "annotate", "steer", "sweep", "reduce", "parallel", "log"}},
      {"sweep plan", {"model", "run", "data", "generate", "annotate", "steer", "sweep", "log"}},
      {"sweep run", {"model", "run", "data", "generate", "annotate", "steer", "sweep", "parallel", "log"}},
      {"reduce", {"model", "run", "data", "generate", "annotate", "steer", "sweep", "reduce", "log"}},
      {"inspect", {"model", "log"}},
      {"toy corpus", {"toy", "run", "log"}},
      {"toy tokenizer", {"toy", "run", "log"}},
      {"toy eval", {"toy", "run", "log"}},
      {"toy train", {"toy", "train", "run", "parallel", "log"}},
  };
  return m;
}

}  // namespace

std::vector<std::string> config_sections(const std::string& subcommand) {
  auto it = subcommand_sections().find(subcommand);
  return it == subcommand_sections().end() ? std::vector<std::string>{} : it->second;
}

std::string config_help(const std::string& subcommand) {
  Config scratch;
  OptionTable t = make_table(scratch);
  std::ostringstream out;
  out << "Options (command line --section.key value, or key = value under [section] in --config FILE):\n"
      << "  --config FILE   INI config file\n  --help          this help\n\n";
  for (const auto& s : config_sections(subcommand)) out << t.sections.at(s) << "\n";
  return out.str();
}

bool config_parse(int argc, const char* const* argv, const std::string& subcommand, Config& cfg) {
  OptionTable t = make_table(cfg);
  po::options_description all("options");
  all.add_options()("help,h", "help")("config", po::value<std::string>(&cfg.config_file), "INI config file");
  for (auto& [name, desc] : t.sections) all.add(desc);

  po::variables_map vm;
  std::set<std::string> from_command_line;
  try {
    // Command line first: Boost.PO keeps the first stored value, so the command line beats the file.
    po::parsed_options parsed = po::command_line_parser(argc, argv).options(all).run();
    for (const auto& o : parsed.options) from_command_line.insert(o.string_key);
    po::store(parsed, vm);
  } catch (const po::unknown_option& e) {
    throw InputError("<command line>", e.get_option_name(), "unknown option (see thinksteer " + subcommand + " --help)");
  } catch (const po::error& e) {
    throw InputError("<command line>", subcommand, e.what());
  }
  if (vm.count("help")) {
    std::cout << "thinksteer " << subcommand << "\n\n" << config_help(subcommand);
    return false;
  }
  if (vm.count("config")) {
    const std::string file = vm["config"].as<std::string>();
    std::ifstream in(file);
    if (!in) throw InputError(file, "--config", "cannot open config file");
    try {
      po::store(po::parse_config_file(in, all, /*allow_unregistered=*/false), vm);
    } catch (const po::unknown_option& e) {
      throw InputError(file, e.get_option_name(), "unknown config key");
    } catch (const po::invalid_option_value& e) {
      throw InputError(file, e.get_option_name(), e.what());
    } catch (const po::error& e) {
      throw InputError(file, "<syntax>", e.what());
    }
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw InputError(cfg.config_file.empty() ? "<command line>" : cfg.config_file, "<value>", e.what());
  }
  for (auto& f : t.finishers) f(vm);
  config_validate(cfg, [&](const std::string& key) -> std::string {
    if (from_command_line.count(key)) return "<command line>";
    if (!cfg.config_file.empty() && vm.count(key) && !vm[key].defaulted()) return cfg.config_file;
    return "<default>";
  });
  return true;
}

std::string config_to_ini(const Config& cfg, const std::vector<std::string>& sections) {
  Config copy = cfg;
  OptionTable t = make_table(copy);
  std::ostringstream out;
  std::string section;
  for (const auto& [key, print] : t.printers) {
    const std::string s = key.substr(0, key.find('.'));
    if (!sections.empty() && std::find(sections.begin(), sections.end(), s) == sections.end()) continue;
    if (s != section) {
      out << (section.empty() ? "" : "\n") << "[" << s << "]\n";
      section = s;
    }
    out << key.substr(key.find('.') + 1) << " = " << print() << "\n";
  }
  return out.str();
}

void config_validate(const Config& c, const std::function<std::string(const std::string&)>& source_of) {
  auto fail = [&](const char* key, const std::string& what) {
    throw InputError(source_of ? source_of(key) : (c.config_file.empty() ? "<config>" : c.config_file), key, what);
  };
  if (c.model.dtype != "auto" && c.model.dtype != "float32" && c.model.dtype != "bfloat16" && c.model.dtype != "float16")
    fail("model.dtype", "must be auto, float32, bfloat16 or float16, got '" + c.model.dtype + "'");
  if (c.model.device != "cpu" && c.model.device.rfind("cuda", 0) != 0) fail("model.device", "must be cpu, cuda or cuda:N");
  if (c.run.threads < 0) fail("run.threads", "must be >= 0");
  if (c.data.limit < 0) fail("data.limit", "must be >= 0");
  if (c.generate.max_new_tokens <= 0) fail("generate.max_new_tokens", "must be positive");
  if (c.generate.temperature < 0) fail("generate.temperature", "must be >= 0");
  if (!(c.generate.top_p > 0 && c.generate.top_p <= 1)) fail("generate.top_p", "must be in (0, 1]");
  if (c.generate.top_k < 0) fail("generate.top_k", "must be >= 0");
  if (c.generate.batch_size <= 0) fail("generate.batch_size", "must be positive");
  for (const auto& s : c.generate.stop)
    if (s.empty()) fail("generate.stop", "empty stop string");
  try {
    chat_format_from_name(c.generate.chat_format);
  } catch (const InputError&) {
    fail("generate.chat_format", "must be raw, deepseek_r1, chatml or llama3, got '" + c.generate.chat_format + "'");
  }
  if (c.parallel.pipeline_stages < 1) fail("parallel.pipeline_stages", "must be >= 1");
  if (c.parallel.micro_batches < 0) fail("parallel.micro_batches", "must be >= 0");
  if (!(c.parallel.timeout_seconds > 0)) fail("parallel.timeout_seconds", "must be positive");
  if (!(c.parallel.term_grace_seconds > 0)) fail("parallel.term_grace_seconds", "must be positive");
  if (c.output.dtype != "float32" && c.output.dtype != "float16" && c.output.dtype != "bfloat16")
    fail("output.dtype", "must be float32, float16 or bfloat16, got '" + c.output.dtype + "'");
  if (c.output.compression < 0 || c.output.compression > 9) fail("output.compression", "must be in 0..9");
  if (c.output.buffer_mb < 0) fail("output.buffer_mb", "must be >= 0");
  if (c.collect.source != "prompts" && c.collect.source != "generations")
    fail("collect.source", "must be prompts or generations, got '" + c.collect.source + "'");
  static const char* positions[] = {"all", "last", "prompt", "generated", "spans"};
  if (std::find(std::begin(positions), std::end(positions), c.collect.positions) == std::end(positions))
    fail("collect.positions", "must be all, last, prompt, generated or spans, got '" + c.collect.positions + "'");
  if (c.collect.positions == "generated" && c.collect.source != "generations")
    fail("collect.positions", "generated positions need collect.source = generations");
  if (c.collect.hooks.empty()) fail("collect.hooks", "no hooks given");
  for (const auto& l : c.collect.layers)
    if (l.empty() || l.find_first_not_of("0123456789") != std::string::npos) fail("collect.layers", "not a layer index: '" + l + "'");
  if (c.collect.batch_size <= 0) fail("collect.batch_size", "must be positive");
  if (c.annotate.annotator != "lexicon" && c.annotate.annotator != "toy" && c.annotate.annotator != "llm")
    fail("annotate.annotator", "must be lexicon, toy or llm, got '" + c.annotate.annotator + "'");
  if (!c.annotate.llm_endpoint.empty() && c.annotate.llm_endpoint.rfind("http://", 0) != 0 && c.annotate.llm_endpoint.rfind("https://", 0) != 0)
    fail("annotate.llm_endpoint", "must be an http:// or https:// URL, got '" + c.annotate.llm_endpoint + "'");
  if (c.annotate.annotator == "llm" && !c.annotate.llm_endpoint.empty() && c.annotate.llm_model.empty())
    fail("annotate.llm_model", "the model name to send to annotate.llm_endpoint is required");
  if (c.annotate.annotator == "llm" && c.annotate.llm_endpoint.empty() && c.annotate.llm_model_path.empty())
    fail("annotate.llm_model_path", "annotator llm needs an endpoint (annotate.llm_endpoint) or a local checkpoint (annotate.llm_model_path)");
  try {
    chat_format_from_name(c.annotate.llm_chat_format);
  } catch (const InputError&) {
    fail("annotate.llm_chat_format", "must be raw, deepseek_r1, chatml or llama3, got '" + c.annotate.llm_chat_format + "'");
  }
  {
    const std::string& v = c.annotate.llm_api_key_env;
    const bool name_ok = !v.empty() && !(v[0] >= '0' && v[0] <= '9') &&
                         std::all_of(v.begin(), v.end(), [](char ch) { return ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); });
    if (!name_ok) fail("annotate.llm_api_key_env", "must be the name of an environment variable (letters, digits, _), got '" + v + "'");
  }
  if (c.annotate.llm_max_tokens <= 0) fail("annotate.llm_max_tokens", "must be positive");
  if (!(c.annotate.llm_timeout_seconds > 0)) fail("annotate.llm_timeout_seconds", "must be positive");
  if (c.annotate.llm_retries < 0) fail("annotate.llm_retries", "must be >= 0");
  if (!(c.annotate.llm_retry_seconds >= 0)) fail("annotate.llm_retry_seconds", "must be >= 0");
  if (c.annotate.llm_concurrency < 1 || c.annotate.llm_concurrency > 1024) fail("annotate.llm_concurrency", "must be in 1..1024");
  if (!(c.annotate.llm_max_failed_fraction >= 0 && c.annotate.llm_max_failed_fraction <= 1)) fail("annotate.llm_max_failed_fraction", "must be in [0, 1]");
  if (c.annotate.text_field.empty()) fail("annotate.text_field", "must not be empty");
  if (c.annotate.id_field.empty()) fail("annotate.id_field", "must not be empty");
  if (c.annotate.part != "thinking" && c.annotate.part != "all") fail("annotate.part", "must be thinking or all, got '" + c.annotate.part + "'");
  if (c.vectors.window != "s1" && c.vectors.window != "whole-span") fail("vectors.window", "must be s1 or whole-span, got '" + c.vectors.window + "'");
  for (const auto& l : c.vectors.layers)
    if (l.empty() || l.find_first_not_of("0123456789") != std::string::npos) fail("vectors.layers", "not a layer index: '" + l + "'");
  if (c.vectors.batch_size <= 0) fail("vectors.batch_size", "must be positive");
  if (c.vectors.gguf_layer_map != "next-block" && c.vectors.gguf_layer_map != "same-block")
    fail("vectors.gguf_layer_map", "must be next-block or same-block, got '" + c.vectors.gguf_layer_map + "'");
  if (c.attribute.metric != "paper" && c.attribute.metric != "logprob") fail("attribute.metric", "must be paper or logprob, got '" + c.attribute.metric + "'");
  if (c.attribute.mode != "trace" && c.attribute.mode != "per-span") fail("attribute.mode", "must be trace or per-span, got '" + c.attribute.mode + "'");
  for (const auto& l : c.attribute.layers)
    if (l.empty() || l.find_first_not_of("0123456789") != std::string::npos) fail("attribute.layers", "not a layer index: '" + l + "'");
  if (c.attribute.n_examples < 0) fail("attribute.n_examples", "must be >= 0");
  if (c.attribute.batch_size <= 0) fail("attribute.batch_size", "must be positive");
  if (c.attribute.exclude_first < -1 || c.attribute.exclude_last < -1) fail("attribute.exclude_first", "exclude_first and exclude_last must be >= -1");
  if (!(c.attribute.exclude_first_fraction >= 0 && c.attribute.exclude_first_fraction < 1)) fail("attribute.exclude_first_fraction", "must be in [0, 1)");
  if (c.attribute.n_select <= 0) fail("attribute.n_select", "must be positive");
  auto check_values = [&](const char* key, const std::vector<std::string>& values, std::initializer_list<const char*> allowed) {
    for (const auto& v : values)
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return v == a; })) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(key, "'" + v + "' is not one of " + list);
      }
  };
  auto check_numbers = [&](const char* key, const std::vector<std::string>& values, bool integer) {
    for (const auto& v : values) {
      size_t used = 0;
      bool ok = !v.empty();
      try {
        if (integer) (void)std::stoll(v, &used);
        else ok = ok && std::isfinite(std::stod(v, &used));
      } catch (const std::exception&) {
        ok = false;
      }
      if (!ok || used != v.size()) fail(key, "'" + v + "' is not " + (integer ? "an integer" : "a finite number"));
    }
  };
  check_numbers("sweep.coefficients", c.sweep.coefficients, false);
  check_numbers("sweep.seeds", c.sweep.seeds, true);
  check_values("sweep.hooks", c.sweep.hooks, {"hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out"});
  check_values("sweep.ops", c.sweep.ops, {"add", "project-out"});
  check_values("sweep.positions", c.sweep.positions, {"all", "prompt", "generated"});
  check_values("sweep.controls", c.sweep.controls, {"none", "random"});
  for (const auto& [key, list] : {std::pair<const char*, const std::vector<std::string>*>{"sweep.vectors", &c.sweep.vectors}, {"sweep.layers", &c.sweep.layers},
                                  {"sweep.coefficients", &c.sweep.coefficients}, {"sweep.ops", &c.sweep.ops}, {"sweep.positions", &c.sweep.positions},
                                  {"sweep.controls", &c.sweep.controls}, {"sweep.seeds", &c.sweep.seeds}})
    if (list->empty()) fail(key, "must list at least one value");
  if (c.sweep.task_id < -1) fail("sweep.task_id", "must be >= 0 (or -1: $SLURM_ARRAY_TASK_ID)");
  if (c.reduce.bootstrap < 0) fail("reduce.bootstrap", "must be >= 0");
  if (!(c.reduce.ci > 0 && c.reduce.ci < 1)) fail("reduce.ci", "must be in (0, 1)");
  if (c.toy.n_problems <= 0) fail("toy.n_problems", "must be positive");
  if (c.toy.style != "thinker" && c.toy.style != "base") fail("toy.style", "must be thinker or base, got '" + c.toy.style + "'");
  const std::pair<const char*, double> toy_rates[] = {{"toy.slip_rate", c.toy.slip_rate},
                                                      {"toy.example_testing_rate", c.toy.example_testing_rate},
                                                      {"toy.uncertainty_rate", c.toy.uncertainty_rate},
                                                      {"toy.adding_knowledge_rate", c.toy.adding_knowledge_rate},
                                                      {"toy.test_fraction", c.toy.test_fraction}};
  for (const auto& [key, rate] : toy_rates)
    if (!(rate >= 0 && rate <= 1)) fail(key, "must be in [0, 1]");
  if (c.toy.min_steps < 1 || c.toy.min_steps > 4) fail("toy.min_steps", "must be in 1..4");
  if (c.toy.max_steps < 1 || c.toy.max_steps > 4) fail("toy.max_steps", "must be in 1..4");
  if (c.toy.min_steps > c.toy.max_steps) fail("toy.max_steps", "must be >= toy.min_steps");
  // 256 byte tokens + the 6 R1 added tokens of toy/bpe_trainer.h + at least one merge.
  if (c.toy.vocab_size < 263 || c.toy.vocab_size > 65536) fail("toy.vocab_size", "must be in 263..65536 (256 bytes + 6 added tokens + merges)");
  for (const auto& [key, v] : {std::pair<const char*, int64_t>{"train.d_model", c.train.d_model}, {"train.n_layer", c.train.n_layer},
                               {"train.n_head", c.train.n_head}, {"train.n_kv_head", c.train.n_kv_head}, {"train.d_mlp", c.train.d_mlp},
                               {"train.max_position", c.train.max_position}, {"train.steps", c.train.steps},
                               {"train.batch_size", c.train.batch_size}})
    if (v <= 0) fail(key, "must be positive");
  if (c.train.n_head % c.train.n_kv_head != 0) fail("train.n_kv_head", "must divide train.n_head");
  if (c.train.d_model % c.train.n_head != 0 || (c.train.d_model / c.train.n_head) % 2 != 0)
    fail("train.n_head", "must divide train.d_model into an even head size");
  if (!(c.train.lr > 0)) fail("train.lr", "must be positive");
  if (!(c.train.min_lr_ratio >= 0 && c.train.min_lr_ratio <= 1)) fail("train.min_lr_ratio", "must be in [0, 1]");
  if (c.train.warmup_steps < 0) fail("train.warmup_steps", "must be >= 0");
  if (!(c.train.weight_decay >= 0)) fail("train.weight_decay", "must be >= 0");
  if (!(c.train.beta1 >= 0 && c.train.beta1 < 1)) fail("train.beta1", "must be in [0, 1)");
  if (!(c.train.beta2 >= 0 && c.train.beta2 < 1)) fail("train.beta2", "must be in [0, 1)");
  if (!(c.train.grad_clip >= 0)) fail("train.grad_clip", "must be >= 0");
  if (!(c.train.init_std > 0)) fail("train.init_std", "must be positive");
  if (c.train.checkpoint_every < 0) fail("train.checkpoint_every", "must be >= 0");
  if (c.train.save_dtype != "float32" && c.train.save_dtype != "bfloat16")
    fail("train.save_dtype", "must be float32 or bfloat16, got '" + c.train.save_dtype + "'");
  static const char* levels[] = {"trace", "debug", "info", "warn", "error"};
  if (std::find(std::begin(levels), std::end(levels), c.log.level) == std::end(levels)) fail("log.level", "must be trace, debug, info, warn or error");
  if (c.log.progress_seconds <= 0) fail("log.progress_seconds", "must be positive");
}

}  // namespace ts
