#include "stages/annotate_taxonomy.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "annotate/taxonomy_annotator.h"
#include "artifacts/sentences.h"
#include "artifacts/taxonomy_export.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "core/sha256.h"

namespace ts::stages {
namespace fs = std::filesystem;

namespace {

// The cluster and winning encoder value of every row of the file at the SAE's layer, in blocks.
void classify(const fs::path& file, const artifacts::SaeExport& sae, std::vector<int32_t>& cluster, std::vector<float>& value) {
  const artifacts::SentenceRowReader rows(file, sae.layer);
  const std::vector<float> norms = artifacts::read_sentence_norms(file, sae.layer), file_mean = artifacts::read_sentence_mean(file, sae.layer);
  const auto n = static_cast<int64_t>(norms.size()), d = sae.d_in;
  const auto t = [](const std::vector<float>& v, std::vector<int64_t> shape) { return at::from_blob(const_cast<float*>(v.data()), shape, at::kFloat).to(at::kDouble); };
  const at::Tensor w_enc = t(sae.w_enc, {sae.d_sae, d}), b_enc = t(sae.b_enc, {sae.d_sae}), b_dec = t(sae.b_dec, {d});
  const at::Tensor mu_file = t(file_mean, {d}), mu_sae = t(sae.mean, {d}), norm = t(norms, {n});
  cluster.resize(static_cast<size_t>(n));
  value.resize(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += 4096) {
    const int64_t count = std::min<int64_t>(4096, n - b);
    std::vector<float> block = rows.read(b, count);
    const at::Tensor raw = mu_file + norm.narrow(0, b, count).unsqueeze(1) * t(block, {count, d});
    at::Tensor x = raw - mu_sae;
    x = x / x.norm(2, 1, true).clamp_min(1e-12);
    const auto [best, idx] = at::max(at::matmul(x - b_dec, w_enc.t()) + b_enc, 1);
    const at::Tensor i64 = idx.contiguous(), v = best.to(at::kFloat).contiguous();
    for (int64_t i = 0; i < count; ++i) {
      cluster[static_cast<size_t>(b + i)] = static_cast<int32_t>(i64.data_ptr<int64_t>()[i]);
      value[static_cast<size_t>(b + i)] = v.data_ptr<float>()[i];
    }
  }
}

}  // namespace

std::unique_ptr<Annotator> make_taxonomy_annotator(const Config& cfg) {
  const fs::path dir = cfg.annotate.taxonomy_sae;
  const fs::path file = cfg.annotate.taxonomy_sentences.empty() ? artifacts::SENTENCES_H5.in(cfg) : fs::path(cfg.annotate.taxonomy_sentences);
  const artifacts::SaeExport sae = artifacts::read_sae_export(dir, "annotate.taxonomy_sae");
  const artifacts::SentencesMeta meta = artifacts::read_sentences_meta(file, "annotate.taxonomy_sentences");
  if (std::find(meta.layers.begin(), meta.layers.end(), sae.layer) == meta.layers.end())
    throw InputError(file.string(), "layers", "holds no layer " + std::to_string(sae.layer) + ", the layer of the SAE " + dir.string());
  if (meta.d_model != sae.d_in)
    throw InputError((dir / "cfg.json").string(), "d_in", std::to_string(sae.d_in) + " differs from d_model " + std::to_string(meta.d_model) + " of " + file.string());
  std::vector<int32_t> cluster;
  std::vector<float> value;
  classify(file, sae, cluster, value);
  const artifacts::SentenceIndex index = artifacts::read_sentence_index(file);
  std::unordered_map<std::string, std::vector<ClassifiedSentence>> by_trace;
  std::vector<int64_t> sizes(static_cast<size_t>(sae.d_sae), 0);
  for (int64_t i = 0; i < index.size(); ++i) {
    const auto r = static_cast<size_t>(i);
    by_trace[index.trace_id[r]].push_back({index.char_begin[r], index.char_end[r], cluster[r], value[r]});
    ++sizes[static_cast<size_t>(cluster[r])];
  }
  for (auto& [id, v] : by_trace) std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
  for (size_t k = 0; k < sizes.size(); ++k)
    if (sizes[k] == 0) spdlog::warn("annotate: latent idx{} of {} is the argmax of no sentence of {} (a dead latent: no span gets it)", k, dir.string(), file.string());
  std::string identity = "taxonomy sae " + sae.key + " weights " + sha256_file(dir / "sae_weights.safetensors") + " centering " +
                         sha256_file(dir / "centering.safetensors") + " sentences " + certified_content_hash(file) + " position " + meta.position;
  spdlog::info("annotate: taxonomy annotator: {} sentences of {} traces classified by the SAE {} (layer {}, K {}) on their {} activations{}",
               index.size(), by_trace.size(), dir.string(), sae.layer, sae.d_sae, meta.position,
               meta.position == "mean" ? " (§B.7's default is the last token: sentences.position = last_token)" : "");
  return std::make_unique<TaxonomyAnnotator>(sae.d_sae, std::move(by_trace), std::move(identity));
}

}  // namespace ts::stages
