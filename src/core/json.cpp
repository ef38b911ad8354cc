#include "core/json.h"

#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace ts {

std::string json_field_path(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return path + "." + std::string(key);
}

json json_parse_strict(std::string_view text, const std::string& file) {
  // Track the keys seen in each open object to reject duplicates.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      default: break;
    }
    return true;
  };
  json result;
  try {
    result = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    throw InputError(file, "<json>", std::string("not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) throw InputError(file, duplicate, "duplicate key in JSON object");
  return result;
}

json json_read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(path.string(), "<file>", ec ? "cannot stat: " + ec.message() : "missing or not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "<file>", "cannot open for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return json_parse_strict(buffer.str(), path.string());
}

const json& json_require(const json& obj, std::string_view key, const std::string& file, const std::string& path) {
  if (!obj.is_object()) throw InputError(file, path.empty() ? "<root>" : path, "expected a JSON object");
  auto it = obj.find(std::string(key));
  if (it == obj.end()) throw InputError(file, json_field_path(path, key), "missing required field");
  return *it;
}

int64_t json_int(const json& obj, std::string_view key, const std::string& file, const std::string& path) {
  const json& v = json_require(obj, key, file, path);
  if (!v.is_number_integer()) throw InputError(file, json_field_path(path, key), "expected an integer, got " + v.dump());
  return v.get<int64_t>();
}

double json_number(const json& obj, std::string_view key, const std::string& file, const std::string& path) {
  const json& v = json_require(obj, key, file, path);
  if (!v.is_number()) throw InputError(file, json_field_path(path, key), "expected a number, got " + v.dump());
  return v.get<double>();
}

std::string json_string(const json& obj, std::string_view key, const std::string& file, const std::string& path) {
  const json& v = json_require(obj, key, file, path);
  if (!v.is_string()) throw InputError(file, json_field_path(path, key), "expected a string, got " + v.dump());
  return v.get<std::string>();
}

bool json_bool(const json& obj, std::string_view key, const std::string& file, const std::string& path) {
  const json& v = json_require(obj, key, file, path);
  if (!v.is_boolean()) throw InputError(file, json_field_path(path, key), "expected true or false, got " + v.dump());
  return v.get<bool>();
}

void jsonl_for_each(std::istream& in, const std::string& name,
                    const std::function<bool(const json& row, const std::string& where, int64_t line)>& row) {
  std::string line;
  int64_t lineno = 0;
  // A bounded getline: a file without newlines (a device, a binary) must not grow one line without end.
  auto next_line = [&]() -> bool {
    line.clear();
    for (int c; (c = in.get()) != std::char_traits<char>::eof();) {
      if (c == '\n') return true;
      if (line.size() >= JSONL_MAX_LINE_BYTES)
        throw InputError(name + ":" + std::to_string(lineno + 1), "<line>",
                         "longer than " + std::to_string(JSONL_MAX_LINE_BYTES >> 20) + " MiB: not a JSON Lines file");
      line.push_back(static_cast<char>(c));
    }
    return !line.empty();
  };
  while (next_line()) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = name + ":" + std::to_string(lineno);
    const json obj = json_parse_strict(line, where);
    if (!obj.is_object()) throw InputError(where, "<line>", "each line must be a JSON object");
    if (!row(obj, where, lineno)) return;
  }
}

}  // namespace ts
