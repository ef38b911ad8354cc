// The option table behind core/config.h (private to core/config*.cpp): every key bound to its Config
// field, with its help text and the check of its value, declared once (core/config_options.cpp).
// Every value is read as text and parsed here, strictly: a whole integer (no sign for unsigned keys),
// a finite number, true/false, or one of an option enum's names (core/options.h).
#pragma once
#include <boost/program_options.hpp>

#include <cmath>
#include <functional>
#include <type_traits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/options.h"

namespace ts::config_detail {

namespace po = boost::program_options;

// Where a key's value came from: "<command line>", the INI file, or "<default>".
using SourceOf = std::function<std::string(const std::string&)>;

// A check of one value: empty when it is fine, else what is wrong ("must be positive").
template <class T>
using Check = std::function<std::string(const T&)>;

namespace check {
Check<int64_t> positive();
Check<int64_t> at_least(int64_t lo);
Check<int64_t> in_range(int64_t lo, int64_t hi);
// Doubles are always checked finite; these add the range.
Check<double> positive_number();
Check<double> at_least(double lo);
Check<double> in_unit(bool open_low, bool open_high);  // [0, 1], (0, 1], [0, 1), (0, 1)
Check<std::string> not_empty();
Check<std::string> http_url_or_empty();
Check<std::string> env_var_name();
Check<std::vector<std::string>> layer_indices();
Check<std::vector<std::string>> not_empty_list();
Check<std::vector<std::string>> no_empty_item();
Check<std::vector<std::string>> numbers(bool integer, double max_abs);
template <class E>
Check<std::vector<std::string>> each_option();
Check<std::vector<std::string>> all(std::vector<Check<std::vector<std::string>>> checks);
}  // namespace check

class OptionTable {
 public:
  OptionTable();

  // A scalar key (std::string, bool, int64_t, uint64_t, double) bound to `field`.
  template <class T>
  void add(const std::string& key, T* field, const std::string& help, Check<T> check = {});
  // A comma-separated list.
  void add_list(const std::string& key, std::vector<std::string>* field, const std::string& help, Check<std::vector<std::string>> check = {});
  // An option enum (core/options.h): one of its names; the help lists them.
  template <class E>
  void add_option(const std::string& key, E* field, const std::string& help);

  std::map<std::string, po::options_description> sections;
  // Key -> its value printed as the config file and the command line take it.
  std::vector<std::pair<std::string, std::function<std::string()>>> printers;
  // Per key: parse the text (or keep the default) and check the value; throws InputError naming the
  // key and where its value came from.
  std::vector<std::function<void(const po::variables_map&, const SourceOf&)>> readers;
  // Per key: check the value already in the field (config_validate on a Config made in code).
  std::vector<std::function<void(const SourceOf&)>> checks;

 private:
  po::options_description& section(const std::string& key);
  void add_text(const std::string& key, const std::string& shown_default, const std::string& help);
  std::map<std::string, std::string> section_help_;
};

// Throws InputError(source_of(key), key, what).
[[noreturn]] void fail(const SourceOf& source_of, const std::string& key, const std::string& what);

// Text <-> value, strictly. parse_value throws std::invalid_argument with what is wrong.
std::string to_text(const std::string& v);
std::string to_text(bool v);
std::string to_text(int64_t v);
std::string to_text(uint64_t v);
std::string to_text(double v);
std::string to_text(const std::vector<std::string>& v);
void parse_value(const std::string& text, std::string& out);
void parse_value(const std::string& text, bool& out);
void parse_value(const std::string& text, int64_t& out);
void parse_value(const std::string& text, uint64_t& out);
void parse_value(const std::string& text, double& out);
std::vector<std::string> split_csv(const std::string& s);

template <class T>
void OptionTable::add(const std::string& key, T* field, const std::string& help, Check<T> check) {
  add_text(key, to_text(*field), help);
  printers.emplace_back(key, [field] { return to_text(*field); });
  auto verify = [key, field, check](const SourceOf& source_of) {
    if constexpr (std::is_same_v<T, double>) {
      if (!std::isfinite(*field)) fail(source_of, key, "must be a finite number, got " + to_text(*field));
    }
    if (check)
      if (const std::string what = check(*field); !what.empty()) fail(source_of, key, what + ", got " + to_text(*field));
  };
  readers.emplace_back([key, field, verify](const po::variables_map& vm, const SourceOf& source_of) {
    if (!vm[key].defaulted()) {
      try {
        parse_value(vm[key].as<std::string>(), *field);
      } catch (const std::invalid_argument& e) {
        fail(source_of, key, e.what());
      }
    }
    verify(source_of);
  });
  checks.emplace_back(verify);
}

template <class E>
void OptionTable::add_option(const std::string& key, E* field, const std::string& help) {
  add_text(key, std::string(option_name(*field)), option_names_joined<E>("|", "|") + ": " + help);
  printers.emplace_back(key, [field] { return std::string(option_name(*field)); });
  readers.emplace_back([key, field](const po::variables_map& vm, const SourceOf& source_of) {
    const std::string text = vm[key].as<std::string>();
    const auto value = option_parse<E>(text);
    if (!value) fail(source_of, key, "must be " + option_names_joined<E>(", ", " or ") + ", got '" + text + "'");
    *field = *value;
  });
}

template <class E>
Check<std::vector<std::string>> check::each_option() {
  return [](const std::vector<std::string>& values) -> std::string {
    for (const auto& v : values)
      if (!option_parse<E>(v)) return "'" + v + "' is not one of " + option_names_joined<E>(", ", ", ");
    return "";
  };
}

// The declarations of every key, one function per group of sections (core/config_options.cpp).
void declare_run_options(OptionTable& t, Config& c);               // [model] [run] [data] [generate] [parallel] [output]
void declare_collect_annotate_options(OptionTable& t, Config& c);  // [collect] [annotate]
void declare_vectors_steer_options(OptionTable& t, Config& c);     // [vectors] [sentences] [attribute] [steer]
void declare_sweep_options(OptionTable& t, Config& c);             // [sweep] [reduce]
void declare_toy_log_options(OptionTable& t, Config& c);           // [toy] [train] [log]
void declare_taxonomy_options(OptionTable& t, Config& c);          // [taxonomy]
void declare_basevec_options(OptionTable& t, Config& c);           // [basevec]
void declare_thinkedit_options(OptionTable& t, Config& c);         // [thinkedit]
void declare_directions_options(OptionTable& t, Config& c);        // [directions]
void declare_intervene_options(OptionTable& t, Config& c);         // [intervene]

// Checks that relate several keys (the others sit with their key's declaration).
void check_relations(const Config& c, const SourceOf& source_of);

}  // namespace ts::config_detail
