// thinksteer-check: torch-free validation of the files thinksteer reads (checkpoint directories,
// safetensors files, tokenizer.json, INI/command-line options). Runs where libtorch is not installed,
// and is the binary the bad-input tests run under ASan/UBSan.
//
// Error contract (same as `thinksteer`): bad input prints exactly one line
//   [error] <file>: <field>: <what>
// on stderr and exits 2 (ts::EXIT_BAD_INPUT); anything else that goes wrong exits 1 with one line.
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/done_marker.h"
#include "io/output_lock.h"
#include "stages/catalogue.h"
#include "core/error.h"
#include "io/prompts.h"
#include "model/checkpoint_files.h"
#include "model/checkpoint_summary.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* USAGE =
    "usage: thinksteer-check <what> ...\n"
    "\n"
    "Validates the files thinksteer reads, without libtorch. Bad input: one line\n"
    "'[error] <file>: <field>: <what>' on stderr and exit status 2.\n"
    "\n"
    "  checkpoint DIR        config.json, safetensors (single or sharded), tensor inventory and shapes,\n"
    "                        tokenizer.json if present and its vocabulary size against config.json\n"
    "  safetensors FILE      one safetensors file: header summary\n"
    "  tokenizer FILE        a tokenizer.json\n"
    "  config SUBCOMMAND [--config FILE] [--section.key value ...]\n"
    "                        resolves the options of a thinksteer subcommand and prints them as INI\n"
    "  prompts [FILE] [--config FILE] [--data.key value ...]\n"
    "                        a JSONL prompts file as `thinksteer generate` reads it (FILE or --data.prompts)\n"
    "  run RUN_DIR           every .done marker of a run directory checked against the file it certifies\n"
    "                        (size and content hash; exit 1 when any differs) and every held output lock\n"
    "  --help                this help\n";

void print_error(const std::string& message) { std::cerr << "[error] " << ts::error_one_line(message) << std::endl; }
void print_warning(const std::string& message) { std::cerr << "[warn] " << ts::error_one_line(message) << std::endl; }


// Exactly one positional argument after the command; anything else is a usage error.
std::string single_arg(int argc, char** argv, const char* command, const char* what) {
  if (argc != 3) throw ts::InputError("<command line>", command, std::string("expects exactly one argument: ") + what);
  const std::string arg = argv[2];
  if (arg.empty()) throw ts::InputError("<command line>", command, std::string("empty ") + what);
  return arg;
}

int cmd_checkpoint(int argc, char** argv) {
  const fs::path dir = single_arg(argc, argv, "checkpoint", "the checkpoint directory");
  ts::CheckpointFiles ck = ts::checkpoint_open(dir);
  for (const auto& name : ck.unexpected) print_warning("checkpoint tensor " + name + " is not used by the model");
  std::cout << ts::checkpoint_summary(ck) << "ok\n";
  return 0;
}

int cmd_safetensors(int argc, char** argv) {
  const fs::path path = single_arg(argc, argv, "safetensors", "the safetensors file");
  ts::SafetensorsFile file(path);
  const ts::SafetensorsHeader& h = file.header();
  std::map<std::string, size_t> dtypes;
  uint64_t data_bytes = 0;
  for (const auto& t : h.tensors) {
    ++dtypes[ts::dtype_name(t.dtype)];
    data_bytes += t.end - t.begin;
  }
  std::cout << "file         " << path.string() << "\n"
            << "header       " << h.data_start - 8 << " bytes\n"
            << "data         " << data_bytes << " bytes\n"
            << "tensors      " << h.tensors.size() << "\n";
  std::cout << "dtypes      ";
  for (const auto& [name, n] : dtypes) std::cout << " " << name << " x" << n;
  std::cout << "\n";
  for (const auto& [k, v] : h.metadata) std::cout << "metadata     " << ts::error_one_line(k) << " = " << ts::error_one_line(v) << "\n";
  for (const auto& t : h.tensors)
    std::cout << "  " << ts::error_one_line(t.name) << " " << ts::dtype_name(t.dtype) << " " << ts::shape_to_string(t.shape) << " [" << t.begin << ", "
              << t.end << ")\n";
  std::cout << "ok\n";
  return 0;
}

int cmd_tokenizer(int argc, char** argv) {
  const fs::path path = single_arg(argc, argv, "tokenizer", "the tokenizer.json file");
  const ts::Tokenizer tok = ts::Tokenizer::from_file(path);
  std::cout << "tokenizer    " << path.string() << "\n"
            << "vocab        " << tok.vocab_size() << " tokens\n"
            << "ok\n";
  return 0;
}

int cmd_config(int argc, char** argv) {
  if (argc < 3) throw ts::InputError("<command line>", "config", "expects the thinksteer subcommand whose options to resolve");
  const std::string sub = argv[2];
  const ts::stages::StageInfo* stage = ts::stages::find_stage(sub);
  if (stage == nullptr) throw ts::InputError("<command line>", "config", "unknown thinksteer subcommand '" + sub + "'");
  ts::Config cfg;
  // config_parse wants argv[0] to be the subcommand name.
  if (!ts::config_parse(argc - 2, argv + 2, sub, stage->sections, cfg)) return 0;  // --help was printed
  std::cout << ts::config_to_ini(cfg, stage->sections);
  return 0;
}

int cmd_prompts(int argc, char** argv) {
  // `prompts FILE [options]` is `prompts --data.prompts FILE [options]`.
  std::vector<const char*> args = {"generate"};
  int first_option = 2;
  if (argc > 2 && std::strncmp(argv[2], "--", 2) != 0) {
    args.push_back("--data.prompts");
    args.push_back(argv[2]);
    first_option = 3;
  }
  for (int i = first_option; i < argc; ++i) args.push_back(argv[i]);
  ts::Config cfg;
  if (!ts::config_parse(static_cast<int>(args.size()), args.data(), "generate", ts::stages::find_stage("generate")->sections, cfg)) return 0;  // --help
  if (cfg.data.prompts.empty()) throw ts::InputError("<command line>", "data.prompts", "no prompts file given");
  const std::vector<ts::Prompt> prompts =
      ts::prompts_read_jsonl(cfg.data.prompts, cfg.data.prompt_field, cfg.data.id_field, cfg.data.answer_field, cfg.data.limit);
  std::cout << "prompts      " << cfg.data.prompts << "\n"
            << "count        " << prompts.size() << "\n"
            << "ok\n";
  return 0;
}

// `run RUN_DIR`: what each marker certifies, checked; the locks listed with their holders.
int cmd_run(int argc, char** argv) {
  const fs::path dir = single_arg(argc, argv, "run", "the run directory");
  if (!fs::is_directory(dir)) throw ts::InputError(dir.string(), "run", "not a directory");
  int bad = 0, ok = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!it->is_regular_file(ec) || name.size() <= 5 || name.compare(name.size() - 5, 5, ".done") != 0) continue;
    const fs::path output = it->path().parent_path() / name.substr(0, name.size() - 5);
    const auto marker = ts::done_marker_read(output);
    std::string verdict;
    if (!marker) verdict = "unreadable marker";
    else if (!fs::exists(output)) verdict = "the file it certifies is missing";
    else if (marker->content_sha256.empty()) verdict = "";  // an earlier marker: certifies no content
    else verdict = ts::done_marker_verify(output).value_or("");
    if (marker && verdict.empty())
      for (const auto& [sidecar, hash] : marker->files)
        if (auto v = ts::done_marker_verify(output.parent_path() / sidecar); v && !v->empty()) verdict = sidecar + ": " + *v;
    std::cout << (verdict.empty() ? "ok       " : "CHANGED  ") << output.lexically_relative(dir).string()
              << (verdict.empty() ? (marker && marker->content_sha256.empty() ? " (earlier marker: no content hash)" : "") : ": " + verdict) << "\n";
    (verdict.empty() ? ok : bad) += 1;
  }
  for (const auto& [lock, holder] : ts::output_locks_under(dir))
    std::cout << "locked   " << lock.lexically_relative(dir).string() << ": " << ts::lock_holder_text(holder)
              << " (remove the file if that job is gone)\n";
  std::cout << ok << " certified, " << bad << " changed\n";
  return bad > 0 ? 1 : 0;
}

int dispatch(int argc, char** argv) {
  const std::string command = argv[1];
  if (command == "checkpoint") return cmd_checkpoint(argc, argv);
  if (command == "safetensors") return cmd_safetensors(argc, argv);
  if (command == "tokenizer") return cmd_tokenizer(argc, argv);
  if (command == "config") return cmd_config(argc, argv);
  if (command == "prompts") return cmd_prompts(argc, argv);
  if (command == "run") return cmd_run(argc, argv);
  throw ts::InputError("<command line>", "command", "unknown command '" + command + "' (see thinksteer-check --help)");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << USAGE;
    return ts::EXIT_BAD_INPUT;
  }
  if (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << USAGE;
    return 0;
  }
  if (argc == 3 && std::strcmp(argv[1], "config") != 0 && std::strcmp(argv[1], "prompts") != 0 && (std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0)) {
    std::cout << USAGE;
    return 0;
  }
  try {
    return dispatch(argc, argv);
  } catch (const ts::InputError& e) {
    print_error(e.what());
    return ts::EXIT_BAD_INPUT;
  } catch (const std::bad_alloc&) {
    print_error("thinksteer-check: out of memory");
    return 1;
  } catch (const std::exception& e) {
    print_error(std::string("thinksteer-check failed: ") + e.what());
    return 1;
  } catch (...) {
    print_error("thinksteer-check failed: unknown exception");
    return 1;
  }
}
