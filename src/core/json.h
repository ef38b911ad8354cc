// Strict JSON reading for untrusted files (config.json, tokenizer.json, safetensors headers).
// Duplicate object keys are rejected (nlohmann keeps the last one silently), and every error
// names the file and the JSON path of the offending field.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <istream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ts {

using json = nlohmann::json;

// Parses `text`; `file` only names the source in errors. Throws InputError.
json json_parse_strict(std::string_view text, const std::string& file);
// Reads and parses a whole file. Throws InputError (missing file, unreadable, bad JSON).
json json_read_file(const std::filesystem::path& path);

// Typed field access: throws InputError(file, "<path>.<key>", ...) when missing or of the wrong type.
// `path` is the JSON path of `obj` itself (e.g. "model" or "" for the root).
const json& json_require(const json& obj, std::string_view key, const std::string& file, const std::string& path = "");
int64_t json_int(const json& obj, std::string_view key, const std::string& file, const std::string& path = "");
double json_number(const json& obj, std::string_view key, const std::string& file, const std::string& path = "");
std::string json_string(const json& obj, std::string_view key, const std::string& file, const std::string& path = "");
bool json_bool(const json& obj, std::string_view key, const std::string& file, const std::string& path = "");

std::string json_field_path(const std::string& path, std::string_view key);

// JSONL: calls row(object, where, line) for every non-blank line of `in` ("where" is "<name>:<line>",
// line numbers from 1); a line that is not a JSON object is an InputError naming it. row() returns
// false to stop early.
// The longest line a JSON Lines input may have (a trace of a long generation with its token ids is a
// few MB; a file without newlines is not JSON Lines).
inline constexpr size_t JSONL_MAX_LINE_BYTES = size_t{64} << 20;

void jsonl_for_each(std::istream& in, const std::string& name,
                    const std::function<bool(const json& row, const std::string& where, int64_t line)>& row);

}  // namespace ts
