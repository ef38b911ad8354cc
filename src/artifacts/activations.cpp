#include "artifacts/activations.h"

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
  if (index.positions == CollectPositions::spans) f.write_strings("/activations/label", labels, "row");
  f.set_attr("/activations", "positions", option_text(index.positions));
  f.set_attr("/activations", "source", option_text(index.source));
}

}  // namespace ts::artifacts
