#include "tokenizer/json_fields.h"

#include <algorithm>

#include "core/error.h"

namespace ts::tokjson {

void Where::fail(const std::string& what) const { throw InputError(file, path.empty() ? "<root>" : path, what); }

const json& require_object(const json& value, const Where& where) {
  if (!value.is_object()) where.fail("expected a JSON object, got " + std::string(value.type_name()));
  return value;
}

const json& require_array(const json& obj, std::string_view key, const Where& where) {
  const json& v = json_require(require_object(obj, where), key, where.file, where.path);
  if (!v.is_array()) where.field(key).fail("expected an array, got " + std::string(v.type_name()));
  return v;
}

std::string require_string(const json& obj, std::string_view key, const Where& where) {
  const json& v = json_require(require_object(obj, where), key, where.file, where.path);
  if (!v.is_string()) where.field(key).fail("expected a string, got " + std::string(v.type_name()));
  return v.get<std::string>();
}

int64_t require_int(const json& obj, std::string_view key, const Where& where) {
  const json& v = json_require(require_object(obj, where), key, where.file, where.path);
  if (!v.is_number_integer()) where.field(key).fail("expected an integer, got " + std::string(v.type_name()));
  return v.get<int64_t>();
}

bool optional_bool(const json& obj, std::string_view key, bool fallback, const Where& where) {
  auto it = require_object(obj, where).find(std::string(key));
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) where.field(key).fail("expected true or false, got " + std::string(it->type_name()));
  return it->get<bool>();
}

std::string component_type(const json& obj, const Where& where) { return require_string(obj, "type", where); }

void check_nesting(const Where& where) {
  constexpr size_t kMaxDepth = 16;
  if (static_cast<size_t>(std::count(where.path.begin(), where.path.end(), '[')) > kMaxDepth)
    where.fail("Sequence components nested more than " + std::to_string(kMaxDepth) + " levels deep");
}

}  // namespace ts::tokjson
