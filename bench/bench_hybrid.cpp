// Hybrid benchmark, thinksteer side (bench/bench_hybrid.py drives it): the KV-cached, batched lockstep
// (hybrid/lockstep.h) on a pair of checkpoints with the steering inputs bench_hybrid.py writes.
//
//   bench_hybrid THINKING_DIR BASE_DIR INPUTS.safetensors PROMPTS.json --batch B --max-new N --layer L
//                --sae-layer S --coef C --threads T [--repeat R]
//
// INPUTS holds "vectors" [K, d_base] and "classifier" [K, d_thinking] (the category is the argmax of
// classifier · x: the benchmark's stand-in for an SAE, the same matmul-and-argmax shape); PROMPTS is a
// JSON list of token-id lists (the same prompt for both models). Rule fixed, no EOS (every row writes N
// tokens), no </think> (-1). Prints ONE JSON line: seconds of the fastest of R runs, tokens emitted,
// tokens/s, steered steps, and the emitted tokens of every prompt (to compare with the reference loops).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/json.h"
#include "hybrid/lockstep.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace {

at::Tensor read(const ts::SafetensorsFile& f, const char* name) {
  const ts::TensorInfo* info = f.find(name);
  if (info == nullptr) throw std::runtime_error(std::string("no tensor '") + name + "'");
  return ts::tensor_from_safetensors(*info, f.bytes(*info)).to(at::kFloat).contiguous();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s THINKING BASE INPUTS.safetensors PROMPTS.json --batch B --max-new N --layer L --sae-layer S --coef C --threads T [--repeat R]\n",
                 argv[0]);
    return 2;
  }
  int64_t batch = 1, max_new = 64, layer = 0, sae_layer = 0, threads = 2, repeat = 1;
  double coef = 1.0;
  for (int i = 5; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--batch") batch = std::atoll(v.c_str());
    else if (a == "--max-new") max_new = std::atoll(v.c_str());
    else if (a == "--layer") layer = std::atoll(v.c_str());
    else if (a == "--sae-layer") sae_layer = std::atoll(v.c_str());
    else if (a == "--coef") coef = std::atof(v.c_str());
    else if (a == "--threads") threads = std::atoll(v.c_str());
    else if (a == "--repeat") repeat = std::atoll(v.c_str());
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(static_cast<int>(threads));
  const ts::Transformer thinking = ts::Transformer::load(argv[1], {});
  const ts::Transformer base = ts::Transformer::load(argv[2], {});
  const ts::SafetensorsFile inputs(argv[3]);
  ts::hybrid::SteeringSet set;
  set.vectors = read(inputs, "vectors");
  const at::Tensor classifier = read(inputs, "classifier");
  std::ifstream pf(argv[4]);
  std::stringstream text;
  text << pf.rdbuf();
  const ts::json prompts = ts::json::parse(text.str());
  std::vector<ts::hybrid::Request> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto ids = prompts[i].get<std::vector<int32_t>>();
    requests.push_back({ids, ids, static_cast<uint64_t>(i)});
  }
  ts::hybrid::Options opt;
  opt.layer = layer, opt.sae_layer = sae_layer, opt.rule = ts::hybrid::CoefRule::fixed, opt.coef = coef, opt.max_new_tokens = max_new;
  const ts::hybrid::Classifier classify = [&](const at::Tensor& x) { return at::matmul(x.to(at::kFloat), classifier.t()).argmax(1); };

  double best = 1e300;
  std::vector<ts::hybrid::Result> results;
  for (int64_t r = 0; r < repeat; ++r) {
    results.clear();
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t b = 0; b < requests.size(); b += static_cast<size_t>(batch)) {
      const std::vector<ts::hybrid::Request> part(requests.begin() + static_cast<int64_t>(b),
                                                  requests.begin() + static_cast<int64_t>(std::min(requests.size(), b + static_cast<size_t>(batch))));
      for (auto& res : ts::hybrid::generate(thinking, base, classify, set, opt, part)) results.push_back(std::move(res));
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  int64_t tokens = 0, steered = 0;
  ts::json outs = ts::json::array();
  for (const auto& res : results) {
    tokens += static_cast<int64_t>(res.tokens.size());
    for (int8_t k : res.kind) steered += k == static_cast<int8_t>(ts::hybrid::TokenKind::steered);
    outs.push_back(res.tokens);
  }
  const ts::json out = {{"seconds", best}, {"tokens", tokens}, {"tokens_per_s", static_cast<double>(tokens) / best}, {"steered", steered}, {"outputs", outs}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
