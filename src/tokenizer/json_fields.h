// Small JSON accessors for tokenizer.json components on top of core/json.h: optional fields with
// defaults, arrays, and JSON paths for error messages ("pre_tokenizer.pretokenizers[1].type").
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/json.h"

namespace ts::tokjson {

// Where a component lives: the file (for messages) and the JSON path of the component object.
struct Where {
  const std::string& file;
  std::string path;

  Where field(std::string_view key) const { return {file, json_field_path(path, key)}; }
  Where index(size_t i) const { return {file, path + "[" + std::to_string(i) + "]"}; }
  [[noreturn]] void fail(const std::string& what) const;
};

// The object itself must be a JSON object.
const json& require_object(const json& value, const Where& where);
// obj[key] must exist and be an array / object / string.
const json& require_array(const json& obj, std::string_view key, const Where& where);
std::string require_string(const json& obj, std::string_view key, const Where& where);
int64_t require_int(const json& obj, std::string_view key, const Where& where);
// obj[key] when present and not null, else `fallback`; wrong types throw.
bool optional_bool(const json& obj, std::string_view key, bool fallback, const Where& where);
// The "type" field of a component object.
std::string component_type(const json& obj, const Where& where);
// Guards recursion over nested Sequence components (the depth is read from the JSON path).
void check_nesting(const Where& where);

// Calls fn(item, item_where) for each entry of a `Sequence` component's list `list_key`
// (e.g. "pretokenizers"); null entries are errors naming the `noun` expected.
template <class Fn>
void for_each_sequence_item(const json& value, std::string_view list_key, std::string_view noun, const Where& where, Fn&& fn) {
  check_nesting(where);
  const json& list = require_array(value, list_key, where);
  const Where list_where = where.field(list_key);
  for (size_t i = 0; i < list.size(); ++i) {
    const Where item = list_where.index(i);
    if (list[i].is_null()) item.fail("expected a " + std::string(noun) + " object, got null");
    fn(list[i], item);
  }
}

}  // namespace ts::tokjson
