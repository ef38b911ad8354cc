// Engine benchmark: prefill with and without recording, and greedy decode at several batch sizes.
//
//   bench_engine --model DIR [--threads N] [--prefill-batch B] [--prefill-len T] [--repeats R]
//                [--decode-batches 1,8] [--new-tokens 128] [--prompt-len P] [--seed S]
//                [--prefill-logits all|last|none] [--profile-decode STEPS] [--serve]
//                [--dtype float32|bfloat16] [--steer-layer L]
//
// --dtype: the compute dtype (bench/bench_bf16.py runs one process per dtype); --steer-layer L: decode adds
// 4 * a fixed unit vector at blocks.{L}.hook_resid_post at every position (a steered sweep point's edit).
//
// Default: one warm-up and R timed runs of every measurement, then ONE JSON line on stdout with
// medians (and minima) in seconds and tokens/s.
// --serve: prints {"ready":...} and then answers one JSON line per command read from stdin, each
// command being ONE timed run; bench/bench_engine.py uses this to interleave thinksteer and HF runs
// so that both see the same load on a shared machine. Commands:
//   prefill record | prefill nohook | decode B | profile STEPS [B] | profile prefill STEPS | bandwidth MB |
//   paired STEPS WEIGHT_BYTES (batch-1 steps alternated with plain reads of as many bytes) | quit
//
// Measurements:
//   prefill  [B, T] unpadded forward (logits per --prefill-logits), optionally recording
//            blocks.{l}.hook_resid_post at every layer; the timed region includes the hook's copy of
//            every activation and fetching each layer's [B, T, D] tensor, as a researcher keeps them.
//   decode   ts::generate_batch, greedy, no EOS: exactly --new-tokens tokens per row. The decode phase
//            runs from the start of the first single-token forward (timestamped by a hook at layer 0)
//            to the return of generate_batch: new_tokens-1 forwards; decode tokens/s is
//            B * (new_tokens-1) / decode seconds. total tokens/s is B * new_tokens / total seconds.
//   profile  single-token forwards at batch B (default 1; outside generate_batch): step time, then the
//            same steps under an op profiler on ATen's RecordFunction callbacks (top-level ops of the
//            calling thread; per op, the median over steps of its wall and process-CPU time).
// Each run also reports its process CPU time: cpu_s / (s * threads) well below 1 means the machine
// was busy with other work.
//
// Prompt ids are generated from (seed, stream, index) by splitmix64 (prompt_ids below); the Python
// driver reproduces them exactly, so both engines see the same tokens.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <immintrin.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/allocator.h"
#include "plain_read.h"
#include "model/small_linear.h"
#include "model/generate.h"
#include "model/hooks.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double cpu_seconds() {  // CPU time of the whole process (all threads)
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

using plain_read::median;

double minimum(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); }

std::string fmt(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

std::string json_list(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += fmt(v[i]);
  }
  return s + "]";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// splitmix64 of (seed, stream, index): token ids shared with bench_engine.py.
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::vector<int32_t> prompt_ids(uint64_t seed, uint64_t stream, int64_t len, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(len));
  const uint64_t base = splitmix64(seed * 1000003ULL + stream);
  for (int64_t i = 0; i < len; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(splitmix64(base + static_cast<uint64_t>(i)) % static_cast<uint64_t>(vocab));
  return ids;
}

struct Args {
  std::string model;
  int threads = 2;
  int64_t prefill_batch = 4;
  int64_t prefill_len = 256;
  int repeats = 3;
  std::vector<int64_t> decode_batches{1, 8};
  int64_t new_tokens = 128;
  int64_t prompt_len = 128;
  uint64_t seed = 1234;
  std::string prefill_logits = "all";
  int64_t profile_steps = 0;
  bool serve = false;
  std::string dtype = "float32";
  int64_t steer_layer = -1;
};

[[noreturn]] void usage(const std::string& msg) {
  std::cerr << "bench_engine: " << msg << "\n"
            << "usage: bench_engine --model DIR [--threads N] [--prefill-batch B] [--prefill-len T] [--repeats R]\n"
            << "                    [--decode-batches 1,8] [--new-tokens 128] [--prompt-len P] [--seed S]\n"
            << "                    [--prefill-logits all|last|none] [--profile-decode STEPS] [--serve]\n"
            << "                    [--dtype float32|bfloat16] [--steer-layer L]\n";
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value for " + k);
      return argv[++i];
    };
    try {
      if (k == "--model") a.model = value();
      else if (k == "--threads") a.threads = std::stoi(value());
      else if (k == "--prefill-batch") a.prefill_batch = std::stoll(value());
      else if (k == "--prefill-len") a.prefill_len = std::stoll(value());
      else if (k == "--repeats") a.repeats = std::stoi(value());
      else if (k == "--new-tokens") a.new_tokens = std::stoll(value());
      else if (k == "--prompt-len") a.prompt_len = std::stoll(value());
      else if (k == "--seed") a.seed = std::stoull(value());
      else if (k == "--prefill-logits") a.prefill_logits = value();
      else if (k == "--profile-decode") a.profile_steps = std::stoll(value());
      else if (k == "--serve") a.serve = true;
      else if (k == "--dtype") a.dtype = value();
      else if (k == "--steer-layer") a.steer_layer = std::stoll(value());
      else if (k == "--decode-batches") {
        a.decode_batches.clear();
        std::stringstream ss(value());
        std::string item;
        while (std::getline(ss, item, ','))
          if (!item.empty()) a.decode_batches.push_back(std::stoll(item));
      } else if (k == "-h" || k == "--help") usage("help");
      else usage("unknown argument " + k);
    } catch (const std::logic_error&) {
      usage("bad value for " + k);
    }
  }
  if (a.model.empty()) usage("--model is required");
  if (a.threads < 1 || a.prefill_batch < 1 || a.prefill_len < 1 || a.repeats < 1 || a.new_tokens < 2 || a.prompt_len < 1)
    usage("sizes must be positive (and --new-tokens >= 2)");
  for (int64_t b : a.decode_batches)
    if (b < 1) usage("decode batches must be positive");
  if (a.prefill_logits != "all" && a.prefill_logits != "last" && a.prefill_logits != "none") usage("bad --prefill-logits");
  if (a.dtype != "float32" && a.dtype != "bfloat16") usage("bad --dtype");
  return a;
}

// ---- A minimal op profiler on ATen's RecordFunction callbacks (calling thread, top-level ops only) ----

struct OpStat {
  int64_t calls = 0;
  double seconds = 0.0;      // wall
  double cpu_seconds = 0.0;  // process CPU (all threads)
};

struct OpProfiler {
  static inline std::map<std::string, OpStat> stats;
  static inline thread_local int depth = 0;
  static inline std::thread::id main_thread;

  struct Ctx : at::ObserverContext {
    Clock::time_point t0;
    double c0 = 0.0;
    bool top = false;
  };

  static std::unique_ptr<at::ObserverContext> start(const at::RecordFunction&) {
    auto ctx = std::make_unique<Ctx>();
    ctx->top = std::this_thread::get_id() == main_thread && depth == 0;
    ++depth;
    if (ctx->top) {
      ctx->c0 = cpu_seconds();
      ctx->t0 = Clock::now();
    }
    return ctx;
  }
  static void end(const at::RecordFunction& fn, at::ObserverContext* base) {
    --depth;
    auto* ctx = static_cast<Ctx*>(base);
    if (!ctx->top) return;
    OpStat& s = stats[fn.name()];
    ++s.calls;
    s.seconds += seconds_since(ctx->t0);
    s.cpu_seconds += cpu_seconds() - ctx->c0;
  }
};

// ---------------------------------------------------------------------------------------------

struct PrefillRun {
  double s = 0.0, cpu_s = 0.0;
};

struct DecodeRun {
  double total_s = 0.0, decode_s = 0.0, cpu_s = 0.0, decode_cpu_s = 0.0;
  std::vector<std::vector<int32_t>> tokens;
};

class Bench {
 public:
  explicit Bench(const Args& a) : a_(a), model_(load(a)), hooks_(model_.n_layer_held()) {
    const int64_t B = a.prefill_batch, T = a.prefill_len, V = model_.config().n_vocab;
    prefill_tokens_ = at::empty({B, T}, at::kLong);
    auto acc = prefill_tokens_.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto ids = prompt_ids(a.seed, 1000 + static_cast<uint64_t>(b), T, V);
      for (int64_t t = 0; t < T; ++t) acc[b][t] = ids[static_cast<size_t>(t)];
    }
    prefill_positions_ = at::arange(T, at::kLong).unsqueeze(0).expand({B, T}).contiguous();
    for (int64_t l = 0; l < model_.n_layer_held(); ++l) hooks_.record({ts::HookSite::RESID_POST, l});
    prefill_mode_ = a.prefill_logits == "all" ? ts::LogitsMode::ALL : a.prefill_logits == "last" ? ts::LogitsMode::LAST : ts::LogitsMode::NONE;
  }

  double load_s() const { return load_s_; }
  const ts::Transformer& model() const { return model_; }

  PrefillRun prefill(bool record) {
    hooks_.clear_records();  // drop the previous run's tensors outside the timed region
    ts::ForwardArgs fa;
    fa.tokens = prefill_tokens_;
    fa.positions = prefill_positions_;
    fa.hooks = record ? &hooks_ : nullptr;
    fa.logits = prefill_mode_;
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    at::Tensor out = model_.forward(fa);
    if (record) {
      // What a researcher keeps: one [B, T, D] tensor per layer (the hook already copied it out).
      std::vector<at::Tensor> kept;
      kept.reserve(static_cast<size_t>(model_.n_layer_held()));
      for (int64_t l = 0; l < model_.n_layer_held(); ++l) kept.push_back(hooks_.recorded({ts::HookSite::RESID_POST, l}));
      if (kept.back().size(1) != a_.prefill_len) throw std::runtime_error("unexpected recorded shape");
    }
    PrefillRun r;
    r.s = seconds_since(t0);
    r.cpu_s = cpu_seconds() - c0;
    return r;
  }

  DecodeRun decode(int64_t B) {
    const int64_t V = model_.config().n_vocab;
    std::vector<ts::GenerateRequest> reqs;
    for (int64_t b = 0; b < B; ++b) reqs.push_back({prompt_ids(a_.seed, static_cast<uint64_t>(b), a_.prompt_len, V), static_cast<uint64_t>(b)});
    ts::GenerateOptions opt;
    opt.max_new_tokens = a_.new_tokens;  // greedy (temperature 0 by default), no EOS: exactly new_tokens tokens

    // Timestamp of the first single-token forward: one std::function call per forward, at layer 0 only.
    ts::HookSet timer(model_.n_layer_held());
    std::optional<Clock::time_point> decode_start;
    double decode_cpu_start = 0.0;
    const int64_t first_decode_slot = a_.prompt_len;
    timer.add_fn({ts::HookSite::RESID_PRE, 0}, [&](const at::Tensor& x, const ts::HookContext& ctx) {
      if (ctx.slot_start == first_decode_slot) {
        decode_cpu_start = cpu_seconds();
        decode_start = Clock::now();
      }
      return x;
    });
    if (a_.steer_layer >= 0) {
      const at::Tensor v = at::ones({model_.config().d_model}, at::kFloat);  // fixed direction: all ones
      timer.add_vector({ts::HookSite::RESID_POST, a_.steer_layer}, v / v.norm(), 4.0);
    }

    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    std::vector<ts::GenerateResult> results = ts::generate_batch(model_, reqs, opt, &timer);
    const auto t1 = Clock::now();
    DecodeRun r;
    r.cpu_s = cpu_seconds() - c0;
    r.decode_cpu_s = cpu_seconds() - decode_cpu_start;
    if (!decode_start) throw std::runtime_error("decode phase not observed");
    r.total_s = std::chrono::duration<double>(t1 - t0).count();
    r.decode_s = std::chrono::duration<double>(t1 - *decode_start).count();
    for (auto& res : results) {
      if (static_cast<int64_t>(res.tokens.size()) != a_.new_tokens) throw std::runtime_error("generate_batch stopped early");
      r.tokens.push_back(std::move(res.tokens));
    }
    return r;
  }

  // Single-token forwards at batch B with a KV cache, as generate_batch runs them: after a prefill of the prompt,
  // each call of the returned function runs one greedy step (at most `steps` + 2 of them).
  std::function<void()> decode_stepper(int64_t steps, int64_t B) {
    const ts::ModelConfig& c = model_.config();
    const int64_t L = model_.n_layer_held(), S = a_.prompt_len;
    struct State {
      ts::KVCache cache;
      ts::ForwardArgs fa;
      at::Tensor logits;
      int64_t slot;
    };
    auto st = std::make_shared<State>(State{ts::KVCache(L, B, c.n_kv_head, S + steps + 4, c.d_head, model_.options()), {}, {}, S});
    at::Tensor tokens = at::empty({B, S}, at::kLong);
    for (int64_t b = 0; b < B; ++b) {
      const auto ids = prompt_ids(a_.seed, static_cast<uint64_t>(b), S, c.n_vocab);
      for (int64_t t = 0; t < S; ++t) tokens.data_ptr<int64_t>()[b * S + t] = ids[static_cast<size_t>(t)];
    }
    st->fa.tokens = tokens;
    st->fa.positions = at::arange(S, at::kLong).unsqueeze(0).expand({B, S}).contiguous();
    st->fa.cache = &st->cache;
    st->fa.prompt_end = S;
    st->fa.logits = ts::LogitsMode::LAST;
    st->logits = model_.forward(st->fa);
    return [this, st, B]() {  // the greedy choice as generate makes it (one scan of the logits where the kernels run)
      st->fa.tokens = at::tensor(ts::choose_tokens(st->logits, ts::GenerateOptions{}, {}, {})).view({B, 1});
      st->fa.positions = at::full({B, 1}, st->slot, at::kLong);
      st->fa.slot_start = st->slot++;
      st->logits = model_.forward(st->fa);
    };
  }

  // Step time without and with the op profiler.
  std::string profile_decode(int64_t steps, int64_t B) {
    steps = std::max<int64_t>(steps, 2);
    B = std::max<int64_t>(B, 1);
    return profile_steps(decode_stepper(2 * steps, B), steps,
                         "\"what\":\"decode\",\"batch\":" + std::to_string(B) + ",\"context\":" + std::to_string(a_.prompt_len));
  }

  // Batch-1 decode steps alternated with plain reads of `weight_bytes` (windows of a buffer 4x that, in turn, so no
  // cache holds them). Per pair, read seconds / step seconds is the step's weight-read rate as a share of what a
  // plain read gets at that moment: this VM's bandwidth drifts by up to 2x within seconds, and a pair's two halves
  // are milliseconds apart. The step includes everything a decode step does (attention, KV writes, argmax).
  std::string paired_decode(int64_t steps, int64_t weight_bytes) {
    return plain_read::paired(decode_stepper(steps + 1, 1), steps, weight_bytes);
  }

  // The batch-1 decode step's linears alone (every layer's matrices and the head, one fixed row of x), paired with plain
  // reads as paired_decode is: the kernel's share of the read without the step's other ops.
  std::string paired_kernels(int64_t passes, int64_t weight_bytes) {
    const ts::ModelWeights& w = model_.weights();
    std::vector<at::Tensor> mats;
    for (const auto& l : w.layers)
      for (const at::Tensor& m : {l.w_qkv, l.w_o, l.w_gate, l.w_up, l.w_down}) mats.push_back(m);
    mats.push_back(w.lm_head);
    const at::Tensor x_model = at::randn({1, mats[0].size(1)}, mats[0].options()), x_mlp = at::randn({1, w.layers[0].w_down.size(1)}, mats[0].options());
    return plain_read::paired([&]() { for (const at::Tensor& m : mats) ts::linear(m.size(1) == x_model.size(1) ? x_model : x_mlp, m); }, passes, weight_bytes);
  }

  // The prefill without hooks (as prefill(false)) under the op profiler.
  std::string profile_prefill(int64_t steps) {
    ts::ForwardArgs fa;
    fa.tokens = prefill_tokens_;
    fa.positions = prefill_positions_;
    fa.logits = prefill_mode_;
    auto step = [&]() { model_.forward(fa); };
    return profile_steps(step, steps, "\"what\":\"prefill\",\"batch\":" + std::to_string(a_.prefill_batch) + ",\"len\":" +
                                          std::to_string(a_.prefill_len));
  }

  // Runs `step` once, `steps` times timed, once more and `steps` times under the op profiler; per op, the
  // median over steps of its wall and process-CPU time in a step.
  static std::string profile_steps(const std::function<void()>& step, int64_t steps, const std::string& fields) {
    step();  // warm-up
    std::vector<double> plain, plain_cpu;
    for (int64_t i = 0; i < steps; ++i) {
      const double c = cpu_seconds();
      const auto t = Clock::now();
      step();
      plain.push_back(seconds_since(t));
      plain_cpu.push_back(cpu_seconds() - c);
    }

    OpProfiler::main_thread = std::this_thread::get_id();
    auto handle = at::addGlobalCallback(at::RecordFunctionCallback(&OpProfiler::start, &OpProfiler::end).scopes({at::RecordScope::FUNCTION}));
    step();  // warm-up with the callbacks on
    std::vector<double> profiled, op_totals, op_cpu_totals;
    // Per op, its wall and CPU seconds in each step (0 where absent).
    std::map<std::string, std::vector<double>> per_op, per_op_cpu;
    std::map<std::string, double> calls;
    for (int64_t i = 0; i < steps; ++i) {
      OpProfiler::stats.clear();
      const auto t = Clock::now();
      step();
      profiled.push_back(seconds_since(t));
      double total = 0.0, total_cpu = 0.0;
      for (const auto& [name, st] : OpProfiler::stats) {
        auto& v = per_op[name];
        auto& vc = per_op_cpu[name];
        v.resize(static_cast<size_t>(i), 0.0);
        vc.resize(static_cast<size_t>(i), 0.0);
        v.push_back(st.seconds);
        vc.push_back(st.cpu_seconds);
        calls[name] += static_cast<double>(st.calls);
        total += st.seconds;
        total_cpu += st.cpu_seconds;
      }
      op_totals.push_back(total);
      op_cpu_totals.push_back(total_cpu);
    }
    at::removeCallback(handle);

    // Per op: the median over steps of its time in a step (robust to steps slowed by other work).
    struct Row {
      std::string name;
      double wall, cpu;
    };
    std::vector<Row> rows;
    for (auto& [name, v] : per_op) {
      v.resize(static_cast<size_t>(steps), 0.0);
      auto& vc = per_op_cpu[name];
      vc.resize(static_cast<size_t>(steps), 0.0);
      rows.push_back({name, median(v), median(vc)});
    }
    std::sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) { return x.cpu > y.cpu; });
    const double n = static_cast<double>(steps);
    std::ostringstream js;
    js << "{" << fields << ",\"steps\":" << steps << ",\"step_ms\":" << fmt(1e3 * median(plain))
       << ",\"step_ms_min\":" << fmt(1e3 * minimum(plain)) << ",\"step_cpu_ms\":" << fmt(1e3 * median(plain_cpu))
       << ",\"step_ms_profiled\":" << fmt(1e3 * median(profiled)) << ",\"top_level_ops_ms\":" << fmt(1e3 * median(op_totals))
       << ",\"top_level_ops_cpu_ms\":" << fmt(1e3 * median(op_cpu_totals)) << ",\"ops\":[";
    for (size_t i = 0; i < rows.size(); ++i)
      js << (i ? "," : "") << "{\"op\":\"" << json_escape(rows[i].name) << "\",\"calls_per_step\":" << fmt(calls[rows[i].name] / n)
         << ",\"ms_per_step\":" << fmt(1e3 * rows[i].wall) << ",\"cpu_ms_per_step\":" << fmt(1e3 * rows[i].cpu) << "}";
    js << "]}";
    return js.str();
  }

 private:
  ts::Transformer load(const Args& a) {
    const auto t = Clock::now();
    ts::LoadOptions opts;
    opts.dtype = a.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
    ts::Transformer m = ts::Transformer::load(a.model, opts);
    load_s_ = seconds_since(t);
    return m;
  }

  const Args& a_;
  double load_s_ = 0.0;
  ts::Transformer model_;
  ts::HookSet hooks_;
  at::Tensor prefill_tokens_, prefill_positions_;
  ts::LogitsMode prefill_mode_ = ts::LogitsMode::ALL;
};

std::string tokens_json(const std::vector<std::vector<int32_t>>& rows) {
  std::string s = "[";
  for (size_t b = 0; b < rows.size(); ++b) {
    s += b ? ",[" : "[";
    for (size_t i = 0; i < rows[b].size(); ++i) {
      if (i) s += ',';
      s += std::to_string(rows[b][i]);
    }
    s += "]";
  }
  return s + "]";
}

std::string prefill_json(const PrefillRun& r) { return "{\"s\":" + fmt(r.s) + ",\"cpu_s\":" + fmt(r.cpu_s) + "}"; }

std::string decode_json(int64_t B, const DecodeRun& r) {
  return "{\"batch\":" + std::to_string(B) + ",\"total_s\":" + fmt(r.total_s) + ",\"decode_s\":" + fmt(r.decode_s) + ",\"cpu_s\":" + fmt(r.cpu_s) +
         ",\"decode_cpu_s\":" + fmt(r.decode_cpu_s) + ",\"tokens\":" + tokens_json(r.tokens) + "}";
}

int serve(Bench& bench, const Args& a, const std::string& header) {
  std::cout << header << ",\"ready\":true}" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, arg;
    in >> cmd >> arg;
    try {
      if (cmd == "quit") break;
      if (cmd == "prefill" && (arg == "record" || arg == "nohook")) std::cout << prefill_json(bench.prefill(arg == "record")) << std::endl;
      else if (cmd == "decode") std::cout << decode_json(std::stoll(arg), bench.decode(std::stoll(arg))) << std::endl;
      else if (cmd == "bandwidth") std::cout << plain_read::read_bandwidth(std::stoll(arg), 3) << std::endl;  // bandwidth MB
      else if (cmd == "paired") {  // paired STEPS WEIGHT_BYTES
        int64_t bytes = 0;
        in >> bytes;
        std::cout << bench.paired_decode(std::stoll(arg), bytes) << std::endl;
      }
      else if (cmd == "kernels") {  // kernels PASSES WEIGHT_BYTES
        int64_t bytes = 0;
        in >> bytes;
        std::cout << bench.paired_kernels(std::stoll(arg), bytes) << std::endl;
      }
      else if (cmd == "profile") {  // profile STEPS [B] (decode) | profile prefill STEPS
        if (arg == "prefill") {
          int64_t steps = 3;
          in >> steps;
          std::cout << bench.profile_prefill(steps) << std::endl;
        } else {
          int64_t batch = 1;
          in >> batch;
          std::cout << bench.profile_decode(std::stoll(arg), batch) << std::endl;
        }
      }
      else std::cout << "{\"error\":\"unknown command: " << json_escape(line) << "\"}" << std::endl;
    } catch (const std::exception& e) {
      std::cout << "{\"error\":\"" << json_escape(e.what()) << "\"}" << std::endl;
    }
  }
  return 0;
}

}  // namespace

int run(const Args& a);

int main(int argc, char** argv) {
  ts::pin_allocator();  // as the thinksteer executable does (core/allocator.h)
  const Args a = parse_args(argc, argv);
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::cerr << "bench_engine: " << e.what() << "\n";
    return 1;
  }
}

int run(const Args& a) {
  at::set_num_threads(a.threads);
  c10::InferenceMode inference;

  Bench bench(a);
  const ts::ModelConfig& cfg = bench.model().config();
  std::ostringstream js;
  js << "{\"engine\":\"thinksteer\",\"threads\":" << at::get_num_threads() << ",\"n_layer\":" << bench.model().n_layer_held()
     << ",\"d_model\":" << cfg.d_model << ",\"n_vocab\":" << cfg.n_vocab << ",\"load_s\":" << fmt(bench.load_s());
  if (a.serve) return serve(bench, a, js.str());

  const int64_t PB = a.prefill_batch, PT = a.prefill_len;
  for (bool record : {true, false}) {
    bench.prefill(record);  // warm-up
    std::vector<double> s, cpu;
    for (int r = 0; r < a.repeats; ++r) {
      const PrefillRun run = bench.prefill(record);
      s.push_back(run.s);
      cpu.push_back(run.cpu_s / (run.s * a.threads));
    }
    js << ",\"" << (record ? "prefill_record" : "prefill_nohook") << "\":{\"batch\":" << PB << ",\"len\":" << PT << ",\"logits\":\""
       << a.prefill_logits << "\",\"s\":" << fmt(median(s)) << ",\"s_min\":" << fmt(minimum(s))
       << ",\"tok_s\":" << fmt(static_cast<double>(PB * PT) / median(s)) << ",\"cpu_util\":" << fmt(median(cpu)) << ",\"all_s\":" << json_list(s) << "}";
  }

  js << ",\"decode\":[";
  const double steps = static_cast<double>(a.new_tokens - 1);
  for (size_t bi = 0; bi < a.decode_batches.size(); ++bi) {
    const int64_t B = a.decode_batches[bi];
    bench.decode(B);  // warm-up
    std::vector<double> totals, decodes, cpu;
    DecodeRun last;
    for (int r = 0; r < a.repeats; ++r) {
      last = bench.decode(B);
      totals.push_back(last.total_s);
      decodes.push_back(last.decode_s);
      cpu.push_back(last.cpu_s / (last.total_s * a.threads));
    }
    const double total = median(totals), decode = median(decodes);
    js << (bi ? "," : "") << "{\"batch\":" << B << ",\"prompt_len\":" << a.prompt_len << ",\"new_tokens\":" << a.new_tokens
       << ",\"total_s\":" << fmt(total) << ",\"decode_s\":" << fmt(decode) << ",\"decode_s_min\":" << fmt(minimum(decodes))
       << ",\"prefill_s\":" << fmt(total - decode) << ",\"decode_tok_s\":" << fmt(static_cast<double>(B) * steps / decode)
       << ",\"step_ms\":" << fmt(1e3 * decode / steps) << ",\"total_tok_s\":" << fmt(static_cast<double>(B * a.new_tokens) / total)
       << ",\"cpu_util\":" << fmt(median(cpu)) << ",\"all_decode_s\":" << json_list(decodes) << ",\"tokens\":" << tokens_json(last.tokens) << "}";
  }
  js << "]";

  if (a.profile_steps > 0) js << ",\"profile_decode\":" << bench.profile_decode(a.profile_steps, 1);
  js << "}";
  std::cout << js.str() << std::endl;
  return 0;
}
