#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace ts {

struct Tokenizer::Impl {
  std::string file;
  std::unique_ptr<BpeModel> model;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  PostProcessor post_processor;
  Decoder decoder;
  AddedVocabulary added;
  int64_t vocab_size = 0;
  bool trims_offsets = false;
  // Leading / trailing space characters of every model token (only when trims_offsets).
  std::vector<uint32_t> model_leading_spaces, model_trailing_spaces;
};

namespace {

const json& field_or_null(const json& root, const char* key) {
  static const json null_value;
  auto it = root.find(key);
  return it == root.end() ? null_value : *it;
}

// Byte offsets -> code point offsets (HF's BytesToCharOffsetConverter).
void byte_to_char_offsets(std::string_view text, std::vector<EncodedToken>& tokens) {
  utf8::CharIndex index(text);
  const int64_t n = static_cast<int64_t>(text.size());
  for (EncodedToken& t : tokens) {
    if (t.byte_begin >= n) {  // HF leaves such offsets unconverted
      t.char_begin = t.byte_begin;
      t.char_end = t.byte_end;
      continue;
    }
    t.char_begin = index.at(static_cast<size_t>(t.byte_begin));
    t.char_end = t.byte_end < n ? index.at(static_cast<size_t>(t.byte_end))
                                : static_cast<int64_t>(index.at(static_cast<size_t>(t.byte_end - 1))) + 1;
  }
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  json root;
  try {
    root = json_read_file(tokenizer_json);
  } catch (const json::exception& e) {
    throw InputError(tokenizer_json.string(), "<json>", std::string("not valid JSON: ") + e.what());
  }
  return from_json_tree(root, tokenizer_json.string());
}

Tokenizer Tokenizer::from_json_text(std::string_view text, const std::string& file_for_errors) {
  json root;
  try {
    root = json_parse_strict(text, file_for_errors);
  } catch (const json::exception& e) {
    // Defensive: any nlohmann exception (e.g. out_of_range for 1e400) is bad input.
    throw InputError(file_for_errors, "<json>", std::string("not valid JSON: ") + e.what());
  }
  return from_json_tree(root, file_for_errors);
}

Tokenizer Tokenizer::from_json_tree(const json& root, const std::string& file_for_errors) {
  auto impl = std::make_shared<Impl>();
  impl->file = file_for_errors;
  const std::string& file = impl->file;
  tokjson::Where where{file, ""};
  tokjson::require_object(root, where);
  if (auto it = root.find("version"); it != root.end()) {
    if (!it->is_string() || it->get<std::string>() != "1.0")
      where.field("version").fail("unsupported tokenizer.json version (expected \"1.0\")");
  }
  impl->model = BpeModel::from_json(json_require(root, "model", file, ""), file, "model");
  impl->normalizer = Normalizer::from_json(field_or_null(root, "normalizer"), file, "normalizer");
  impl->pre_tokenizer = PreTokenizer::from_json(field_or_null(root, "pre_tokenizer"), file, "pre_tokenizer");
  impl->post_processor = PostProcessor::from_json(field_or_null(root, "post_processor"), file, "post_processor");
  impl->decoder = Decoder::from_json(field_or_null(root, "decoder"), file, "decoder");
  auto added = root.find("added_tokens");
  impl->added = AddedVocabulary::from_json(added == root.end() ? nullptr : &*added, file, *impl->model, impl->normalizer);
  impl->vocab_size = static_cast<int64_t>(std::max(impl->model->max_id(), impl->added.max_id())) + 1;
  impl->trims_offsets = impl->post_processor.trims_offsets();
  if (impl->trims_offsets) {
    size_t n = static_cast<size_t>(impl->model->max_id() + 1);
    impl->model_leading_spaces.assign(n, 0);
    impl->model_trailing_spaces.assign(n, 0);
    for (size_t id = 0; id < n; ++id)
      if (const std::string* token = impl->model->id_to_token(static_cast<int32_t>(id)))
        count_space_chars(*token, impl->model_leading_spaces[id], impl->model_trailing_spaces[id]);
  }
  return Tokenizer(std::move(impl));
}

void Tokenizer::encode_into(std::string_view text, bool add_special_tokens, bool with_offsets, Encoding& out) const {
  const Impl& im = *impl_;
  if (text.size() >= std::numeric_limits<uint32_t>::max())
    throw InputError("<text to encode>", "<size>", "text larger than 4 GiB");
  if (auto bad = utf8::find_invalid(text))
    throw InputError("<text to encode>", "byte " + std::to_string(*bad), "invalid UTF-8");

  std::vector<EncodedToken> tokens;
  tokens.reserve(text.size() / 3 + 4);
  const bool trim_info = with_offsets && im.trims_offsets;

  auto emit_added = [&](int32_t id, uint32_t begin, uint32_t end, std::string_view value) {
    EncodedToken t{id, 0, 0, begin, end};
    if (trim_info) count_space_chars(value, t.leading_spaces, t.trailing_spaces);
    tokens.push_back(t);
  };

  std::vector<AddedSpan> raw_spans, norm_spans;
  std::vector<WordToken> word_tokens;
  if (im.added.has_tokens(false))
    im.added.split(text, false, raw_spans);
  else if (!text.empty())
    raw_spans.push_back({-1, 0, static_cast<uint32_t>(text.size())});

  for (const AddedSpan& raw : raw_spans) {
    if (raw.end <= raw.begin) continue;
    if (raw.token_id >= 0) {
      emit_added(raw.token_id, raw.begin, raw.end, text.substr(raw.begin, raw.end - raw.begin));
      continue;
    }
    NormalizedText normalized =
        im.normalizer.apply(NormalizedText::borrowed(text.substr(raw.begin, raw.end - raw.begin), raw.begin));
    std::string_view ntext = normalized.text();
    norm_spans.clear();
    if (im.added.has_tokens(true))
      im.added.split(ntext, true, norm_spans);
    else if (!ntext.empty())
      norm_spans.push_back({-1, 0, static_cast<uint32_t>(ntext.size())});

    for (const AddedSpan& span : norm_spans) {
      if (span.end <= span.begin) continue;
      if (span.token_id >= 0) {
        auto [b, e] = normalized.original_range(span.begin, span.end);
        emit_added(span.token_id, b, e, ntext.substr(span.begin, span.end - span.begin));
        continue;
      }
      Pieces pieces;
      pieces.text = &normalized;
      pieces.ranges.push_back({span.begin, span.end});
      im.pre_tokenizer.apply(pieces);
      std::string_view ptext = pieces.text->text();
      for (const ByteRange& r : pieces.ranges) {
        word_tokens.clear();
        im.model->tokenize(ptext.substr(r.begin, r.end - r.begin), pieces.byte_level, word_tokens);
        uint32_t pos = r.begin;
        for (const WordToken& wt : word_tokens) {
          EncodedToken t{wt.id, 0, 0, 0, 0};
          if (with_offsets) {
            auto [b, e] = pieces.text->original_range(pos, pos + wt.length);
            t.byte_begin = b;
            t.byte_end = e;
            if (trim_info && static_cast<size_t>(wt.id) < im.model_leading_spaces.size()) {
              t.leading_spaces = im.model_leading_spaces[static_cast<size_t>(wt.id)];
              t.trailing_spaces = im.model_trailing_spaces[static_cast<size_t>(wt.id)];
            }
          }
          pos += wt.length;
          tokens.push_back(t);
        }
      }
    }
  }

  if (with_offsets) byte_to_char_offsets(text, tokens);  // before post-processing, like HF

  im.post_processor.apply(tokens, add_special_tokens);

  out.ids.reserve(tokens.size());
  for (const EncodedToken& t : tokens) out.ids.push_back(t.id);
  if (with_offsets) {
    out.offsets.reserve(tokens.size());
    out.byte_offsets.reserve(tokens.size());
    for (const EncodedToken& t : tokens) {
      out.offsets.emplace_back(t.char_begin, t.char_end);
      out.byte_offsets.emplace_back(t.byte_begin, t.byte_end);
    }
  }
}

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  Encoding out;
  encode_into(text, add_special_tokens, true, out);
  return out;
}

std::vector<int32_t> Tokenizer::encode_ids(std::string_view text, bool add_special_tokens) const {
  Encoding out;
  encode_into(text, add_special_tokens, false, out);
  return std::move(out.ids);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string_view> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* added = im.added.find(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
    } else if (const std::string* token = im.model->id_to_token(id)) {
      tokens.push_back(*token);
    }
  }
  return im.decoder.decode(tokens);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.token_to_id(token)) return id;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* added = impl_->added.find(id)) return added->content;
  if (const std::string* token = impl_->model->id_to_token(id)) return *token;
  throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocabulary of " + impl_->file);
}

int64_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* added = impl_->added.find(id);
  return added && added->special;
}

}  // namespace ts
