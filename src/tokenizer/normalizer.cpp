#include "tokenizer/normalizer.h"

#include "core/utf8.h"
#include "tokenizer/json_fields.h"

namespace ts {

namespace {

void parse_into(const json& value, const tokjson::Where& where, std::vector<UnicodeForm>& steps) {
  if (value.is_null()) return;
  std::string type = tokjson::component_type(value, where);
  if (type == "NFC") {
    steps.push_back(UnicodeForm::nfc);
  } else if (type == "NFD") {
    steps.push_back(UnicodeForm::nfd);
  } else if (type == "NFKC") {
    steps.push_back(UnicodeForm::nfkc);
  } else if (type == "NFKD") {
    steps.push_back(UnicodeForm::nfkd);
  } else if (type == "Sequence") {
    tokjson::for_each_sequence_item(value, "normalizers", "normalizer", where, [&](const json& item, const tokjson::Where& item_where) {
      parse_into(item, item_where, steps);
    });
  } else {
    where.field("type").fail("unsupported normalizer type '" + type +
                             "' (supported: NFC, NFD, NFKC, NFKD, Sequence)");
  }
}

}  // namespace

Normalizer Normalizer::from_json(const json& value, const std::string& file, const std::string& path) {
  Normalizer n;
  parse_into(value, tokjson::Where{file, path}, n.steps_);
  return n;
}

NormalizedText Normalizer::apply(NormalizedText text) const {
  for (UnicodeForm form : steps_) {
    auto changes = normalize_changes(text.text(), form);
    if (changes) text = text.transformed(*changes);
  }
  return text;
}

std::string Normalizer::apply_to_string(std::string_view text) const {
  return std::string(apply(NormalizedText::borrowed(text, 0)).text());
}

}  // namespace ts
