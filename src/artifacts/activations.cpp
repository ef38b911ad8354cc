#include "artifacts/activations.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace ts::artifacts {

h5::DatasetSpec activations_dataset(const HookPoint& h, const ModelConfig& c, int64_t n_rows, h5::DType dtype, CollectPositions positions) {
  h5::DatasetSpec s;
  s.path = "/activations/" + hook_name(h);
  s.dtype = dtype;
  if (h.site == HookSite::ATTN_Z) {
    s.shape = {n_rows, c.n_head, c.d_head};
    s.dims = {"row", "head", "d_head"};
  } else {
    s.shape = {n_rows, c.d_model};
    s.dims = {"row", "d_model"};
  }
  s.attrs = {{"hook", hook_name(h)},
             {"layer", h.site == HookSite::LN_FINAL ? "" : std::to_string(h.layer)},
             {"positions", option_text(positions)},
             {"description", positions == CollectPositions::spans ? "mean over each span's tokens (fp64 accumulation)" : "activation at the row's token"}};
  return s;
}

void write_activation_index(h5::SerialFile& f, const ActivationIndex& index) {
  std::vector<int64_t> n_tokens, n_prompt, token_offset, r_off, r_count, tok_seq, tok_pos, cb, ce, row_seq, row_tb, row_te;
  std::vector<int32_t> tok_id;
  std::vector<std::string> ids, texts, labels;
  for (size_t s = 0; s < index.sequences.size(); ++s) {
    const ActivationIndex::Sequence& q = index.sequences[s];
    ids.push_back(q.id);
    texts.push_back(q.text);
    n_tokens.push_back(static_cast<int64_t>(q.ids.size()));
    n_prompt.push_back(q.n_prompt);
    token_offset.push_back(static_cast<int64_t>(tok_id.size()));
    r_off.push_back(static_cast<int64_t>(row_seq.size()));
    r_count.push_back(static_cast<int64_t>(q.rows.size()));
    for (size_t t = 0; t < q.ids.size(); ++t) {
      tok_id.push_back(q.ids[t]);
      tok_seq.push_back(static_cast<int64_t>(s));
      tok_pos.push_back(static_cast<int64_t>(t));
      cb.push_back(q.offsets[t].first);
      ce.push_back(q.offsets[t].second);
    }
    for (const ActivationIndex::Row& r : q.rows) {
      row_seq.push_back(static_cast<int64_t>(s));
      row_tb.push_back(r.token_begin);
      row_te.push_back(r.token_end);
      labels.push_back(r.label);
    }
  }
  using h5::DType;
  const int64_t n = static_cast<int64_t>(index.sequences.size()), nt = static_cast<int64_t>(tok_id.size()), n_rows = static_cast<int64_t>(row_seq.size());
  f.write_strings("/sequences/id", ids, "sequence");
  f.write_strings("/sequences/text", texts, "sequence");
  f.write_dataset({"/sequences/n_tokens", DType::I64, {n}, {"sequence"}, {}}, n_tokens.data());
  f.write_dataset({"/sequences/n_prompt_tokens", DType::I64, {n}, {"sequence"}, {{"description", "tokens of the formatted prompt"}}}, n_prompt.data());
  f.write_dataset({"/sequences/token_offset", DType::I64, {n}, {"sequence"}, {{"description", "first row in /tokens"}}}, token_offset.data());
  f.write_dataset({"/sequences/row_offset", DType::I64, {n}, {"sequence"}, {{"description", "first row in /activations"}}}, r_off.data());
  f.write_dataset({"/sequences/n_rows", DType::I64, {n}, {"sequence"}, {}}, r_count.data());
  f.write_dataset({"/tokens/id", DType::I32, {nt}, {"token"}, {}}, tok_id.data());
  f.write_dataset({"/tokens/sequence", DType::I64, {nt}, {"token"}, {{"description", "row in /sequences"}}}, tok_seq.data());
  f.write_dataset({"/tokens/position", DType::I64, {nt}, {"token"}, {}}, tok_pos.data());
  f.write_dataset({"/tokens/char_begin", DType::I64, {nt}, {"token"}, {{"units", "code points of /sequences/text"}}}, cb.data());
  f.write_dataset({"/tokens/char_end", DType::I64, {nt}, {"token"}, {{"units", "code points of /sequences/text"}}}, ce.data());
  f.write_dataset({"/activations/sequence", DType::I64, {n_rows}, {"row"}, {{"description", "row in /sequences"}}}, row_seq.data());
  f.write_dataset({"/activations/token_begin", DType::I64, {n_rows}, {"row"}, {{"description", "first token (position) of the row"}}}, row_tb.data());
  f.write_dataset({"/activations/token_end", DType::I64, {n_rows}, {"row"}, {{"description", "one past the last token of the row"}}}, row_te.data());
  if (labelled_rows(index.positions)) f.write_strings("/activations/label", labels, "row");
  f.set_attr("/activations", "positions", option_text(index.positions));
  f.set_attr("/activations", "source", option_text(index.source));
}

namespace {

template <class T>
void require_rows(const std::string& file, const std::string& path, const std::vector<T>& v, size_t n, const std::string& of) {
  if (v.size() != n) throw InputError(file, path, "holds " + std::to_string(v.size()) + " entries, expected one per " + of + " (" + std::to_string(n) + ")");
}

}  // namespace

ActivationIndex read_activation_index(const std::filesystem::path& path) {
  const auto opened = open_checked(path, ACTIVATIONS, "collect output");
  const h5::SerialFile& f = *opened;
  const std::string file = path.string();
  ActivationIndex index;
  const auto positions = option_parse<CollectPositions>(f.attr_string("/activations", "positions"));
  const auto source = option_parse<CollectSource>(f.attr_string("/activations", "source"));
  if (!positions || !source) throw InputError(file, "/activations", "unknown positions or source attribute");
  index.positions = *positions;
  index.source = *source;
  const std::vector<std::string> ids = f.read_strings("/sequences/id"), texts = f.read_strings("/sequences/text");
  const size_t n = ids.size();
  const std::vector<int64_t> n_tokens = f.read_i64("/sequences/n_tokens"), n_prompt = f.read_i64("/sequences/n_prompt_tokens"),
                             token_offset = f.read_i64("/sequences/token_offset"), row_offset = f.read_i64("/sequences/row_offset"),
                             n_rows = f.read_i64("/sequences/n_rows");
  for (const auto& [name, v] : {std::pair<const char*, const std::vector<int64_t>*>{"/sequences/n_tokens", &n_tokens}, {"/sequences/n_prompt_tokens", &n_prompt},
                                {"/sequences/token_offset", &token_offset}, {"/sequences/row_offset", &row_offset}, {"/sequences/n_rows", &n_rows}})
    require_rows(file, name, *v, n, "sequence");
  require_rows(file, "/sequences/text", texts, n, "sequence");
  const std::vector<int64_t> tok_id = f.read_i64("/tokens/id"), cb = f.read_i64("/tokens/char_begin"), ce = f.read_i64("/tokens/char_end");
  const std::vector<int64_t> tb = f.read_i64("/activations/token_begin"), te = f.read_i64("/activations/token_end");
  const std::vector<std::string> labels = labelled_rows(index.positions) ? f.read_strings("/activations/label") : std::vector<std::string>{};
  int64_t next_token = 0, next_row = 0;
  for (size_t s = 0; s < n; ++s) {
    if (token_offset[s] != next_token || row_offset[s] != next_row || n_tokens[s] < 0 || n_rows[s] < 0 || n_prompt[s] > n_tokens[s])
      throw InputError(file, "/sequences/token_offset", "sequence " + std::to_string(s) + ": offsets do not tile /tokens and the rows");
    ActivationIndex::Sequence q{ids[s], texts[s], {}, {}, n_prompt[s], {}};
    for (int64_t t = token_offset[s]; t < token_offset[s] + n_tokens[s]; ++t) {
      if (t >= static_cast<int64_t>(tok_id.size())) throw InputError(file, "/tokens/id", "fewer tokens than /sequences/n_tokens adds up to");
      q.ids.push_back(static_cast<int32_t>(tok_id[static_cast<size_t>(t)]));
      q.offsets.emplace_back(cb[static_cast<size_t>(t)], ce[static_cast<size_t>(t)]);
    }
    for (int64_t r = row_offset[s]; r < row_offset[s] + n_rows[s]; ++r) {
      if (r >= static_cast<int64_t>(tb.size()) || tb[static_cast<size_t>(r)] < 0 || te[static_cast<size_t>(r)] <= tb[static_cast<size_t>(r)] ||
          te[static_cast<size_t>(r)] > n_tokens[s])
        throw InputError(file, "/activations/token_begin", "row " + std::to_string(r) + " is not a token range of its sequence");
      q.rows.push_back({tb[static_cast<size_t>(r)], te[static_cast<size_t>(r)], labels.empty() ? "" : labels[static_cast<size_t>(r)]});
    }
    next_token += n_tokens[s];
    next_row += n_rows[s];
    index.sequences.push_back(std::move(q));
  }
  if (next_token != static_cast<int64_t>(tok_id.size()) || next_row != static_cast<int64_t>(tb.size()))
    throw InputError(file, "/sequences/n_rows", "the sequences do not account for every token and row");
  verify_committed(path, "collect output");
  return index;
}

std::vector<ActivationHook> activation_hooks(const std::filesystem::path& path, const std::string& key) {
  const auto opened = open_checked(path, ACTIVATIONS, key);
  const h5::SerialFile& f = *opened;
  std::vector<ActivationHook> out;
  for (const std::string& name : f.members("/activations")) {
    if (name.rfind("blocks.", 0) != 0 && name.rfind("ln_final.", 0) != 0) continue;  // the index and dimension scales
    ActivationHook h{name, -1, 1};
    const std::string layer = f.attr_string("/activations/" + name, "layer");
    if (!layer.empty()) h.layer = std::stoll(layer);
    const std::vector<int64_t> shape = f.shape("/activations/" + name);
    for (size_t i = 1; i < shape.size(); ++i) h.width *= shape[i];
    out.push_back(std::move(h));
  }
  if (out.empty()) throw InputError(path.string(), "/activations", "holds no hook datasets (" + key + ")");
  const auto site = [](const ActivationHook& h) { return static_cast<int>(hook_parse(h.name, INT64_MAX).site); };
  std::stable_sort(out.begin(), out.end(), [&](const ActivationHook& a, const ActivationHook& b) {
    const int64_t la = a.layer < 0 ? INT64_MAX : a.layer, lb = b.layer < 0 ? INT64_MAX : b.layer;
    return la != lb ? la < lb : site(a) < site(b);
  });
  return out;
}

std::vector<float> read_activation_rows(const std::filesystem::path& path, const std::string& hook, std::vector<int64_t>& shape) {
  const auto opened = open_checked(path, ACTIVATIONS, "collect output");
  const h5::SerialFile& f = *opened;
  const std::string dataset = "/activations/" + hook;
  if (!f.exists(dataset)) throw InputError(path.string(), dataset, "no such hook in the file (collect.hooks)");
  shape = f.shape(dataset);
  if (shape.empty() || shape[0] != static_cast<int64_t>(f.shape("/activations/token_begin")[0]))
    throw InputError(path.string(), dataset, "does not have one row per /activations/token_begin entry");
  return f.read_f32(dataset);
}

}  // namespace ts::artifacts
