#include "core/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "core/config_table.h"
#include "core/error.h"

namespace ts {
namespace config_detail {

// A config file larger than this is not a config file (a user pointing --config at a data file).
constexpr uintmax_t MAX_CONFIG_BYTES = 1 << 20;

void fail(const SourceOf& source_of, const std::string& key, const std::string& what) { throw InputError(source_of(key), key, what); }

std::string to_text(const std::string& v) { return v; }
std::string to_text(bool v) { return v ? "true" : "false"; }
std::string to_text(int64_t v) { return std::to_string(v); }
std::string to_text(uint64_t v) { return std::to_string(v); }
std::string to_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
std::string to_text(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out;
}

namespace {

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

template <class Int>
Int parse_int(const std::string& raw, const char* what) {
  const std::string text = trimmed(raw);
  Int v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw std::invalid_argument("not " + std::string(what) + ": '" + raw + "'" + (ec == std::errc::result_out_of_range ? " (out of range)" : ""));
  return v;
}

}  // namespace

void parse_value(const std::string& text, std::string& out) { out = text; }
void parse_value(const std::string& text, bool& out) {
  std::string t = trimmed(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (t == "true" || t == "1" || t == "yes" || t == "on") out = true;
  else if (t == "false" || t == "0" || t == "no" || t == "off") out = false;
  else throw std::invalid_argument("not true or false: '" + text + "'");
}
void parse_value(const std::string& text, int64_t& out) { out = parse_int<int64_t>(text, "an integer"); }
void parse_value(const std::string& text, uint64_t& out) { out = parse_int<uint64_t>(text, "a non-negative integer"); }
void parse_value(const std::string& text, double& out) {
  const std::string t = trimmed(text);
  char* end = nullptr;
  out = t.empty() ? 0.0 : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size()) throw std::invalid_argument("not a number: '" + text + "'");
}

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty() || !out.empty()) out.push_back(cur);
  for (auto& item : out) item = trimmed(item);
  return out;
}

OptionTable::OptionTable()
    : section_help_{{"model", "checkpoint"},
                    {"run", "run directory and resources"},
                    {"data", "input prompts"},
                    {"generate", "generation"},
                    {"parallel", "ranks: data parallel x pipeline stages"},
                    {"output", "HDF5 outputs"},
                    {"collect", "activation collection"},
                    {"annotate", "behaviour annotation"},
                    {"vectors", "difference-of-means steering vectors"},
                    {"sentences", "sentence activations for the taxonomy"},
                    {"attribute", "attribution patching to choose layers"},
                    {"steer", "steered generation"},
                    {"sweep", "steering sweep axes"},
                    {"taxonomy", "the reasoning taxonomy: SAEs and k-means over layers x K"},
                    {"basevec", "steering vectors trained on the base model (correction, linear)"},
                    {"reduce", "gathering a sweep"},
                    {"toy", "toy reasoning world"},
                    {"train", "toy model training"},
                    {"log", "logging and progress"}} {}

po::options_description& OptionTable::section(const std::string& key) {
  const std::string name = key.substr(0, key.find('.'));
  auto it = sections.find(name);
  if (it == sections.end()) it = sections.emplace(name, po::options_description("[" + name + "] " + section_help_[name])).first;
  return it->second;
}

void OptionTable::add_text(const std::string& key, const std::string& shown_default, const std::string& help) {
  section(key).add_options()(key.c_str(), po::value<std::string>()->default_value(shown_default), help.c_str());
}

void OptionTable::add_list(const std::string& key, std::vector<std::string>* field, const std::string& help, Check<std::vector<std::string>> check) {
  add_text(key, to_text(*field), help);
  printers.emplace_back(key, [field] { return to_text(*field); });
  auto verify = [key, field, check](const SourceOf& source_of) {
    if (check)
      if (const std::string what = check(*field); !what.empty()) fail(source_of, key, what);
  };
  readers.emplace_back([key, field, verify](const po::variables_map& vm, const SourceOf& source_of) {
    if (!vm[key].defaulted()) *field = split_csv(vm[key].as<std::string>());
    verify(source_of);
  });
  checks.emplace_back(verify);
}

namespace check {

Check<int64_t> positive() {
  return [](const int64_t& v) { return v > 0 ? "" : "must be positive"; };
}
Check<int64_t> at_least(int64_t lo) {
  return [lo](const int64_t& v) { return v >= lo ? std::string() : "must be >= " + std::to_string(lo); };
}
Check<int64_t> in_range(int64_t lo, int64_t hi) {
  return [lo, hi](const int64_t& v) { return v >= lo && v <= hi ? std::string() : "must be in " + std::to_string(lo) + ".." + std::to_string(hi); };
}
Check<double> positive_number() {
  return [](const double& v) { return v > 0 ? "" : "must be positive"; };
}
Check<double> at_least(double lo) {
  return [lo](const double& v) { return v >= lo ? std::string() : "must be >= " + to_text(lo); };
}
Check<double> in_unit(bool open_low, bool open_high) {
  return [open_low, open_high](const double& v) {
    const bool ok = (open_low ? v > 0 : v >= 0) && (open_high ? v < 1 : v <= 1);
    return ok ? std::string() : std::string("must be in ") + (open_low ? "(" : "[") + "0, 1" + (open_high ? ")" : "]");
  };
}
Check<std::string> not_empty() {
  return [](const std::string& v) { return v.empty() ? "must not be empty" : ""; };
}
Check<std::string> http_url_or_empty() {
  return [](const std::string& v) {
    return v.empty() || v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0 ? "" : "must be an http:// or https:// URL";
  };
}
Check<std::string> env_var_name() {
  return [](const std::string& v) {
    const bool ok = !v.empty() && !(v[0] >= '0' && v[0] <= '9') &&
                    std::all_of(v.begin(), v.end(), [](char ch) { return ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); });
    return ok ? "" : "must be the name of an environment variable (letters, digits, _)";
  };
}
Check<std::vector<std::string>> layer_indices() {
  return [](const std::vector<std::string>& values) -> std::string {
    for (const auto& l : values)
      if (l.empty() || l.size() > 9 || l.find_first_not_of("0123456789") != std::string::npos) return "not a layer index: '" + l + "'";
    return "";
  };
}
Check<std::vector<std::string>> not_empty_list() {
  return [](const std::vector<std::string>& values) { return values.empty() ? "must list at least one value" : ""; };
}
Check<std::vector<std::string>> no_empty_item() {
  return [](const std::vector<std::string>& values) -> std::string {
    for (const auto& v : values)
      if (v.empty()) return "has an empty item";
    return "";
  };
}
Check<std::vector<std::string>> numbers(bool integer, double max_abs) {
  return [integer, max_abs](const std::vector<std::string>& values) -> std::string {
    for (const auto& v : values) {
      try {
        if (integer) {
          int64_t i = 0;
          parse_value(v, i);
        } else {
          double d = 0;
          parse_value(v, d);
          if (!std::isfinite(d) || std::abs(d) > max_abs) return "'" + v + "' is not a finite number of magnitude at most " + to_text(max_abs);
        }
      } catch (const std::invalid_argument&) {
        return "'" + v + "' is not " + (integer ? "an integer" : "a finite number");
      }
    }
    return "";
  };
}
Check<std::vector<std::string>> all(std::vector<Check<std::vector<std::string>>> checks) {
  return [checks](const std::vector<std::string>& values) -> std::string {
    for (const auto& c : checks)
      if (std::string what = c(values); !what.empty()) return what;
    return "";
  };
}

}  // namespace check

namespace {

OptionTable make_table(Config& c) {
  OptionTable t;
  declare_run_options(t, c);
  declare_collect_annotate_options(t, c);
  declare_vectors_steer_options(t, c);
  declare_sweep_options(t, c);
  declare_toy_log_options(t, c);
  declare_taxonomy_options(t, c);
  declare_basevec_options(t, c);
  declare_thinkedit_options(t, c);
  declare_directions_options(t, c);
  declare_intervene_options(t, c);
  return t;
}

// The --config file: a regular file of at most MAX_CONFIG_BYTES (not a directory, FIFO or device).
std::string read_config_file(const std::string& file) {
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(status)) throw InputError(file, "--config", "cannot open config file (no such file)");
  if (!std::filesystem::is_regular_file(status)) throw InputError(file, "--config", "is not a regular file");
  if (std::filesystem::file_size(file, ec) > MAX_CONFIG_BYTES)
    throw InputError(file, "--config", "is larger than " + std::to_string(MAX_CONFIG_BYTES) + " bytes: not a config file");
  std::ifstream in(file);
  if (!in) throw InputError(file, "--config", "cannot open config file");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Reads argv (then the --config file) into `vm`; `from_command_line` gets the keys given there.
void read_sources(int argc, const char* const* argv, const std::string& subcommand, const po::options_description& all, po::variables_map& vm,
                  std::set<std::string>& from_command_line) {
  try {
    // Command line first: Boost.PO keeps the first stored value, so the command line beats the file.
    po::parsed_options parsed = po::command_line_parser(argc, argv).options(all).run();
    for (const auto& o : parsed.options) from_command_line.insert(o.string_key);
    po::store(parsed, vm);
  } catch (const po::unknown_option& e) {
    throw InputError("<command line>", e.get_option_name(), "unknown option (see thinksteer " + subcommand + " --help)");
  } catch (const po::error& e) {
    throw InputError("<command line>", subcommand, e.what());
  }
  if (vm.count("help") || !vm.count("config")) return;
  const std::string file = vm["config"].as<std::string>();
  std::istringstream in(read_config_file(file));
  try {
    po::store(po::parse_config_file(in, all, /*allow_unregistered=*/false), vm);
  } catch (const po::unknown_option& e) {
    throw InputError(file, e.get_option_name(), "unknown config key");
  } catch (const po::invalid_option_value& e) {
    throw InputError(file, e.get_option_name(), e.what());
  } catch (const po::error& e) {
    throw InputError(file, "<syntax>", e.what());
  }
}

}  // namespace
}  // namespace config_detail

using config_detail::OptionTable;

std::string config_help(const std::vector<std::string>& sections) {
  Config scratch;
  OptionTable t = config_detail::make_table(scratch);
  std::ostringstream out;
  out << "Options (command line --section.key value, or key = value under [section] in --config FILE):\n"
      << "  --config FILE   INI config file\n  --help          this help\n\n";
  for (const auto& s : sections) out << t.sections.at(s) << "\n";
  return out.str();
}

bool config_parse(int argc, const char* const* argv, const std::string& subcommand, const std::vector<std::string>& sections, Config& cfg) {
  OptionTable t = config_detail::make_table(cfg);
  config_detail::po::options_description all("options");
  all.add_options()("help,h", "help")("config", config_detail::po::value<std::string>(), "INI config file");
  for (auto& [name, desc] : t.sections) all.add(desc);
  config_detail::po::variables_map vm;
  std::set<std::string> from_command_line;
  config_detail::read_sources(argc, argv, subcommand, all, vm, from_command_line);
  if (vm.count("help")) {
    std::cout << "thinksteer " << subcommand << "\n\n" << config_help(sections);
    return false;
  }
  if (vm.count("config")) cfg.config_file = vm["config"].as<std::string>();
  const config_detail::SourceOf source_of = [&](const std::string& key) -> std::string {
    if (from_command_line.count(key)) return "<command line>";
    if (!cfg.config_file.empty() && vm.count(key) && !vm[key].defaulted()) return cfg.config_file;
    return "<default>";
  };
  for (auto& read : t.readers) read(vm, source_of);
  config_detail::check_relations(cfg, source_of);
  return true;
}

std::string config_to_ini(const Config& cfg, const std::vector<std::string>& sections) {
  Config copy = cfg;
  OptionTable t = config_detail::make_table(copy);
  std::ostringstream out;
  std::string section;
  for (const auto& [key, print] : t.printers) {
    const std::string s = key.substr(0, key.find('.'));
    if (!sections.empty() && std::find(sections.begin(), sections.end(), s) == sections.end()) continue;
    if (s != section) {
      out << (section.empty() ? "" : "\n") << "[" << s << "]\n";
      section = s;
    }
    out << key.substr(key.find('.') + 1) << " = " << print() << "\n";
  }
  return out.str();
}

void config_validate(const Config& cfg, const std::function<std::string(const std::string&)>& source_of) {
  Config copy = cfg;
  OptionTable t = config_detail::make_table(copy);
  const config_detail::SourceOf where = source_of ? source_of : [&cfg](const std::string&) {
    return cfg.config_file.empty() ? std::string("<config>") : cfg.config_file;
  };
  for (auto& check : t.checks) check(where);
  config_detail::check_relations(copy, where);
}

std::string config_unescape(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
  }
  return out;
}

}  // namespace ts
