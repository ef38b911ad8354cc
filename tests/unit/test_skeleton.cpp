// The stage skeleton's pieces without a model: the one subcommand table (every entry has a run
// function and known config sections), done markers (content hash, sidecars, earlier one-line markers),
// output locks (one holder, stale locks of dead processes taken over), the id rule of input rows, and
// artifact writers against their validating readers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/done_marker.h"
#include "core/error.h"
#include "io/output_lock.h"
#include "io/prompts.h"
#include "artifacts/activations.h"
#include "artifacts/sweep_summary.h"
#include "stages/catalogue.h"
#include "stages/stage.h"

namespace fs = std::filesystem;
using namespace ts;

namespace {

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("thinksteer_skeleton_" + std::to_string(::getpid())) / name;
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

}  // namespace

TEST(Skeleton, EverySubcommandHasARunFunctionAndKnownSections) {
  ASSERT_GE(stages::stage_catalogue().size(), 14u);
  for (const auto& s : stages::stage_catalogue()) {
    EXPECT_NE(stages::stage_function(s.name), nullptr) << s.name;
    EXPECT_FALSE(s.help.empty()) << s.name;
    EXPECT_NO_THROW((void)config_help(s.sections)) << s.name;  // every section is declared
    EXPECT_EQ(stages::find_stage(s.name), &s);
  }
  EXPECT_EQ(stages::find_stage("sweep"), nullptr);
  EXPECT_EQ(stages::stage_function("nope"), nullptr);
}

TEST(DoneMarker, CertifiesContentAndSidecars) {
  const fs::path d = scratch("marker");
  const fs::path out = d / "out.h5", side = d / "out.jsonl";
  write(out, "payload");
  write(side, "{}\n");
  done_marker_write(out, "hash-1", {side});
  EXPECT_TRUE(done_marker_matches(out, "hash-1"));
  EXPECT_FALSE(done_marker_matches(out, "hash-2"));
  const auto m = done_marker_read(out);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->content_hash, "full");
  EXPECT_EQ(*m->bytes, 7u);
  ASSERT_EQ(m->files.size(), 1u);
  EXPECT_EQ(m->files[0].first, "out.jsonl");
  EXPECT_EQ(done_marker_verify(out), std::string());
  EXPECT_EQ(done_marker_verify(side), std::string());
  write(side, "{\"changed\": 1}\n");
  ASSERT_TRUE(done_marker_verify(side));
  EXPECT_NE(done_marker_verify(side)->find("changed after it was committed"), std::string::npos);
  write(out, "PAYLOAD");  // same size, other content
  EXPECT_NE(done_marker_verify(out)->find("changed after it was committed"), std::string::npos);
  write(out, "payload, longer");  // another size: the marker no longer says complete
  EXPECT_FALSE(done_marker_matches(out, "hash-1"));
  EXPECT_FALSE(done_marker_verify(d / "uncertified.h5"));
  // An earlier marker (the config hash alone) still says complete and certifies no content.
  write(done_marker_path(out), "hash-0\n");
  EXPECT_TRUE(done_marker_matches(out, "hash-0"));
  EXPECT_EQ(done_marker_verify(out), std::string());
  remove_tree(d);
}

TEST(OutputLock, OneHolderAndStaleLocksTakenOver) {
  const fs::path d = scratch("lock");
  const fs::path out = d / "x.h5";
  {
    OutputLock held = OutputLock::acquire(out);
    EXPECT_TRUE(fs::exists(output_lock_path(out)));
    // This process holds it and is alive, and no Slurm job id matches: a second taker is refused.
    ::unsetenv("SLURM_JOB_ID");
    try {
      (void)OutputLock::acquire(out);
      FAIL() << "a second holder was let in";
    } catch (const InputError& e) {
      EXPECT_EQ(e.field(), "lock");
      EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(::getpid())), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(output_lock_path(out)));  // released
  // A lock left by a process of this host that is gone is taken over.
  json dead = lock_holder_self();
  dead["pid"] = int64_t{999999999};
  write(output_lock_path(out), dead.dump());
  EXPECT_NO_THROW({ OutputLock taken = OutputLock::acquire(out); });
  // A lock of another host is never taken over.
  json remote = lock_holder_self();
  remote["host"] = "elsewhere";
  write(output_lock_path(out), remote.dump());
  EXPECT_THROW((void)OutputLock::acquire(out), InputError);
  ASSERT_EQ(output_locks_under(d).size(), 1u);
  EXPECT_NE(lock_holder_text(output_locks_under(d)[0].second).find("host elsewhere"), std::string::npos);
  remove_tree(d);
}

TEST(IdRule, OneRuleForEveryInputRow) {
  EXPECT_EQ(row_id(json("a-1"), "f:1", "id"), "a-1");
  EXPECT_EQ(row_id(json(7), "f:1", "id"), "7");
  for (const json& bad : {json(""), json(std::string("a\0b", 3)), json("a\nb"), json(1.5), json::array()}) {
    try {
      (void)row_id(bad, "f:1", "id");
      FAIL() << bad.dump();
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), "f:1");
      EXPECT_EQ(e.field(), "id");
    }
  }
  IdSet ids;
  ids.add("a", "f:1", "id");
  EXPECT_THROW(ids.add("a", "f:2", "id"), InputError);
}

TEST(Artifacts, SweepSummaryRoundTripsThroughItsWriterAndReader) {
  const fs::path d = scratch("summary");
  artifacts::SweepSummary s;
  s.labels = {"backtracking", "deduction"};
  s.steerable = {1, 0};
  s.task = {0, 1};
  s.layer = {-1, 2};
  s.seed = {0, 0};
  s.n_prompts = {4, 4};
  s.baseline = {-1, 0};
  s.key = {"k0", "k1"};
  s.dataset = {"builtin:toy-test", "builtin:toy-test"};
  s.kind = {"baseline", "vector"};
  s.vector = {"", "backtracking"};
  s.layers = {"", "2"};
  s.hook = {"", "hook_resid_post"};
  s.op = {"", "add"};
  s.positions = {"", "generated"};
  s.coef = {0, 1.5};
  s.accuracy = {0.5, 0.25};
  s.think_tokens = {100, 120.5};
  s.closed = {1, 0.75};
  s.token_share = {0.2, NAN, 0.4, NAN};
  s.span_share = {0.1, 0.9, 0.3, 0.7};
  for (artifacts::Delta* x : {&s.d_token_share, &s.d_span_share}) x->resize(4, 0.125);
  for (artifacts::Delta* x : {&s.d_accuracy, &s.d_think_tokens}) x->resize(2, -0.5);
  const fs::path file = d / "summary.h5";
  artifacts::write_sweep_summary(file, s, {false, 2, 0, "", 100, 0.95}, json{{"stage", "reduce"}});
  const artifacts::SweepSummary r = artifacts::read_sweep_summary(file);
  EXPECT_EQ(r.labels, s.labels);
  EXPECT_EQ(r.baseline, s.baseline);
  EXPECT_EQ(r.key, s.key);
  EXPECT_EQ(r.coef, s.coef);
  EXPECT_EQ(r.d_think_tokens.hi, s.d_think_tokens.hi);
  EXPECT_EQ(r.span_share, s.span_share);
  EXPECT_TRUE(std::isnan(r.token_share[1]));
  remove_tree(d);
}

TEST(Artifacts, ActivationIndexRoundTripsAndBadOffsetsAreRefused) {
  const fs::path d = scratch("activations");
  artifacts::ActivationIndex index;
  index.positions = CollectPositions::all;
  index.source = CollectSource::generations;
  index.sequences.push_back({"a", "xy", {5, 6}, {{0, 1}, {1, 2}}, 1, {{0, 1, ""}, {1, 2, ""}}});
  index.sequences.push_back({"b", "z", {7}, {{0, 1}}, 1, {{0, 1, ""}}});
  ModelConfig c;
  c.d_model = 3;
  const h5::DatasetSpec spec = artifacts::activations_dataset({HookSite::RESID_POST, 0}, c, 3, h5::DType::F32, CollectPositions::all);
  const std::vector<float> rows = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const fs::path file = d / "activations.h5";
  {
    h5::SerialFile f(file, h5::SerialFile::Mode::CREATE);
    f.write_dataset(spec, rows.data());
    artifacts::write_activation_index(f, index);
    artifacts::write_h5_identity(f, json{{"stage", "collect"}}, artifacts::ACTIVATIONS);
  }
  const artifacts::ActivationIndex back = artifacts::read_activation_index(file);
  ASSERT_EQ(back.sequences.size(), 2u);
  EXPECT_EQ(back.sequences[0].ids, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(back.sequences[1].rows[0].token_end, 1);
  std::vector<int64_t> shape;
  EXPECT_EQ(artifacts::read_activation_rows(file, "blocks.0.hook_resid_post", shape), rows);
  EXPECT_EQ(shape, (std::vector<int64_t>{3, 3}));
  EXPECT_THROW((void)artifacts::read_activation_rows(file, "blocks.1.hook_resid_post", shape), InputError);
  remove_tree(d);
}
