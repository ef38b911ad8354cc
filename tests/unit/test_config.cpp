// Config: one option table, command line beats file beats default, unknown keys are errors naming
// the file and key, lists are comma-separated, the resolved INI round-trips.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "stages/catalogue.h"
#include "core/error.h"

using namespace ts;
namespace fs = std::filesystem;

namespace {

fs::path write_ini(const std::string& name, const std::string& text) {
  fs::path p = fs::temp_directory_path() / ("thinksteer_test_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p;
}

bool parse(std::vector<std::string> args, Config& cfg) {
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return config_parse(static_cast<int>(argv.size()), argv.data(), args[0], stages::find_stage(args[0])->sections, cfg);
}

TEST(Config, DefaultsFileAndCommandLinePrecedence) {
  fs::path ini = write_ini("a.ini", "[generate]\nmax_new_tokens = 77\ntop_p = 0.5\n[model]\npath = /ckpt\n");
  Config cfg;
  ASSERT_TRUE(parse({"generate", "--config", ini.string(), "--generate.top_p", "0.9"}, cfg));
  EXPECT_EQ(cfg.generate.max_new_tokens, 77);  // file beats default
  EXPECT_DOUBLE_EQ(cfg.generate.top_p, 0.9);   // command line beats file
  EXPECT_EQ(cfg.model.path, "/ckpt");
  EXPECT_EQ(cfg.generate.batch_size, 8);       // default
}

TEST(Config, UnknownKeyInFileNamesFileAndKey) {
  fs::path ini = write_ini("b.ini", "[generate]\nmax_new_tokenz = 5\n");
  Config cfg;
  try {
    parse({"generate", "--config", ini.string()}, cfg);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), ini.string());
    EXPECT_NE(std::string(e.what()).find("generate.max_new_tokenz"), std::string::npos) << e.what();
  }
}

TEST(Config, UnknownCommandLineOptionAndBadValues) {
  Config cfg;
  EXPECT_THROW(parse({"generate", "--generate.nope", "1"}, cfg), InputError);
  Config c2;
  EXPECT_THROW(parse({"generate", "--generate.top_p", "2"}, c2), InputError);
  Config c3;
  EXPECT_THROW(parse({"generate", "--generate.max_new_tokens", "many"}, c3), InputError);
  Config c4;
  EXPECT_THROW(parse({"generate", "--model.dtype", "int4"}, c4), InputError);
}

TEST(Config, ListsAreCommaSeparated) {
  Config cfg;
  ASSERT_TRUE(parse({"generate", "--generate.stop", "</think>, \\boxed,END"}, cfg));
  ASSERT_EQ(cfg.generate.stop.size(), 3u);
  EXPECT_EQ(cfg.generate.stop[0], "</think>");
  EXPECT_EQ(cfg.generate.stop[1], "\\boxed");
  EXPECT_EQ(cfg.generate.stop[2], "END");
}

TEST(Config, ResolvedIniRoundTrips) {
  Config cfg;
  ASSERT_TRUE(parse({"generate", "--generate.seed", "42", "--generate.stop", "a,b", "--model.path", "/m"}, cfg));
  fs::path ini = write_ini("c.ini", config_to_ini(cfg));
  Config again;
  ASSERT_TRUE(parse({"generate", "--config", ini.string()}, again));
  EXPECT_EQ(config_to_ini(again), config_to_ini(cfg));
  EXPECT_NE(config_to_ini(cfg).find("[generate]"), std::string::npos);
  EXPECT_EQ(config_to_ini(cfg, {"model"}).find("[generate]"), std::string::npos);
}

TEST(Config, HelpListsTheSubcommandsSections) {
  const std::string help = config_help(stages::find_stage("generate")->sections);
  EXPECT_NE(help.find("generate.max_new_tokens"), std::string::npos);
  EXPECT_NE(help.find("model.path"), std::string::npos);
  EXPECT_EQ(config_help(stages::find_stage("inspect")->sections).find("generate.max_new_tokens"), std::string::npos);
}

}  // namespace

namespace {

// The InputError of parsing `args` (fails the test when there is none).
InputError parse_error(std::vector<std::string> args) {
  Config cfg;
  try {
    parse(std::move(args), cfg);
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "expected InputError";
  return InputError("", "", "");
}

}  // namespace

TEST(Config, OptionsWithFixedValuesAreEnumsNamedOnce) {
  Config cfg;
  ASSERT_TRUE(parse({"generate", "--model.dtype", "bfloat16", "--generate.chat_format", "chatml", "--log.level", "warn"}, cfg));
  EXPECT_EQ(cfg.model.dtype, ComputeDType::bfloat16);
  EXPECT_EQ(cfg.generate.chat_format, ChatFormat::chatml);
  EXPECT_EQ(cfg.log.level, LogLevel::warn);
  // The same strings in the resolved INI, which parses back to the same values.
  const std::string ini = config_to_ini(cfg, {"model", "generate", "log"});
  EXPECT_NE(ini.find("dtype = bfloat16"), std::string::npos) << ini;
  EXPECT_NE(ini.find("chat_format = chatml"), std::string::npos) << ini;
  const InputError e = parse_error({"generate", "--generate.chat_format", "alpaca"});
  EXPECT_EQ(e.field(), "generate.chat_format");
  EXPECT_NE(std::string(e.what()).find("raw, deepseek_r1, chatml or llama3"), std::string::npos) << e.what();
  for (const auto& name : OPTION_NAMES<CollectPositions>) EXPECT_EQ(option_name(*option_parse<CollectPositions>(name)), name);
}

TEST(Config, NonFiniteAndOutOfRangeNumbersAreRefused) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{{"generate.temperature", "nan"},
                                                                                  {"generate.temperature", "inf"},
                                                                                  {"generate.top_p", "-inf"},
                                                                                  {"parallel.timeout_seconds", "nan"},
                                                                                  {"generate.seed", "-1"},
                                                                                  {"generate.max_new_tokens", "1e12"}}) {
    const InputError e = parse_error({"generate", "--" + key, value});
    EXPECT_EQ(e.field(), key) << value << ": " << e.what();
    EXPECT_EQ(e.file(), "<command line>") << e.what();
  }
  const InputError coef = parse_error({"sweep run", "--sweep.coefficients", "1,1e308"});
  EXPECT_EQ(coef.field(), "sweep.coefficients") << coef.what();
}

TEST(Config, ConfigMustBeARegularFileOfBoundedSize) {
  const fs::path dir = fs::temp_directory_path() / ("thinksteer_test_dir_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  InputError e = parse_error({"generate", "--config", dir.string()});
  EXPECT_EQ(e.field(), "--config");
  EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  e = parse_error({"generate", "--config", "/dev/zero"});
  EXPECT_EQ(e.field(), "--config") << e.what();
  fs::path big = write_ini("big.ini", std::string(2 << 20, '#'));
  e = parse_error({"generate", "--config", big.string()});
  EXPECT_NE(std::string(e.what()).find("larger than"), std::string::npos) << e.what();
  fs::remove(dir);
  fs::remove(big);
}
