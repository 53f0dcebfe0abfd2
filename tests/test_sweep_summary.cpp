// The pieces of a sweep's summary on hand-made inputs: CSV round trips, the seed aggregate, the
// onset of a curve and alpha_1 of uniform attention.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/tensor.h"
#include "models/sink_stats.h"
#include "tests/error_of.h"
#include "train/config.h"
#include "train/csv_table.h"
#include "train/run_curve.h"
#include "train/sweep.h"

using namespace sl;
using namespace sl::train;

TEST_CASE("CSV tables round-trip quoted cells and name bad rows", "[sweep][csv]") {
  CsvTable t;
  t.header = {"run", "overrides", "x"};
  t.rows = {{"a", "k=[1, 2] m=\"q\"", "1.5"}, {"b", "", ""}};
  const std::string text = to_csv(t);
  REQUIRE(text == "run,overrides,x\na,\"k=[1, 2] m=\"\"q\"\"\",1.5\nb,,\n");
  const CsvTable back = parse_csv(text, "t.csv");
  REQUIRE(back.header == t.header);
  REQUIRE(back.rows == t.rows);
  REQUIRE(back.cell(0, "overrides") == "k=[1, 2] m=\"q\"");
  REQUIRE(back.cell(1, "no such column").empty());
  // A short row is padded; a long one is refused with the file and line.
  REQUIRE(parse_csv("a,b\n1\n", "t.csv").rows[0] == std::vector<std::string>{"1", ""});
  REQUIRE_THAT(sl::testing::error_of([] { parse_csv("a,b\n1,2,3\n", "t.csv"); }),
               Catch::Contains("t.csv: line 2 has 3 cells"));
}

TEST_CASE("the seed aggregate: mean, sample std and count of the finished runs per variant", "[sweep][seeds]") {
  CsvTable runs;
  runs.header = {"run", "variant", "seed", "status", "sink@0.3", "alpha1", "onset_sink_step"};
  runs.rows = {
      {"wd_s1", "wd", "1", "finished", "20", "0.1", "3000"},
      {"wd_s2", "wd", "2", "finished", "30", "0.2", ""},  // the onset never reached
      {"wd_s3", "wd", "3", "finished", "40", "0.3", "4000"},
      {"wd_s4", "wd", "4", "interrupted", "90", "0.9", "100"},  // not finished: left out
      {"lr_s1", "lr", "1", "finished", "7", "", ""},
  };
  const CsvTable agg = seed_aggregate(runs);
  REQUIRE(agg.rows.size() == 2);
  REQUIRE(agg.cell(0, "variant") == "wd");
  REQUIRE(agg.cell(0, "runs") == "4");
  REQUIRE(agg.cell(0, "finished") == "3");
  REQUIRE(agg.cell(0, "seeds") == "1 2 3");
  REQUIRE(agg.cell(0, "sink@0.3_mean") == "30");
  REQUIRE(agg.cell(0, "sink@0.3_std") == "10");  // sqrt(((-10)^2 + 0 + 10^2) / 2)
  REQUIRE(agg.cell(0, "sink@0.3_n") == "3");
  REQUIRE(agg.cell(0, "alpha1_mean") == "0.2");
  REQUIRE(agg.cell(0, "alpha1_std") == "0.1");
  REQUIRE(agg.cell(0, "onset_sink_step_mean") == "3500");
  REQUIRE(std::stod(agg.cell(0, "onset_sink_step_std")) == Approx(std::sqrt(2 * 500.0 * 500.0)));
  REQUIRE(agg.cell(0, "onset_sink_step_n") == "2");
  // One value: no standard deviation; no value: nothing but n = 0.
  REQUIRE(agg.cell(1, "sink@0.3_mean") == "7");
  REQUIRE(agg.cell(1, "sink@0.3_std").empty());
  REQUIRE(agg.cell(1, "sink@0.3_n") == "1");
  REQUIRE(agg.cell(1, "alpha1_mean").empty());
  REQUIRE(agg.cell(1, "alpha1_n") == "0");
  // Text columns are not averaged.
  REQUIRE(agg.column("seed_mean") < 0);
  REQUIRE(agg.column("status_mean") < 0);
}

TEST_CASE("a summary from before the seeds axis aggregates each run alone", "[sweep][seeds]") {
  CsvTable runs;
  runs.header = {"run", "status", "sink@0.3"};
  runs.rows = {{"softmax", "finished", "12.5"}, {"sigmoid", "finished", "0"}};
  const CsvTable agg = seed_aggregate(runs);
  REQUIRE(agg.rows.size() == 2);
  REQUIRE(agg.cell(0, "variant") == "softmax");
  REQUIRE(agg.cell(0, "sink@0.3_mean") == "12.5");
  REQUIRE(agg.cell(1, "sink@0.3_n") == "1");
}

TEST_CASE("uniform causal attention's alpha_1 is H_T / T, as the sink statistics measure it", "[sweep][onset]") {
  for (int64_t T : {1, 4, 64}) {
    Tensor uniform = Tensor::zeros({1, 1, T, T});
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j) uniform.data()[i * T + j] = 1.f / (float)(i + 1);
    REQUIRE(uniform_alpha1(T) == Approx(models::importance(uniform, 0, 1)[0]).epsilon(1e-6));
  }
  REQUIRE(uniform_alpha1(4) == Approx(25.0 / 48));  // (1 + 1/2 + 1/3 + 1/4) / 4
  REQUIRE(uniform_alpha1(64) == Approx(0.0741).margin(5e-5));
}

TEST_CASE("the onset is the first logged step reaching the threshold", "[sweep][onset]") {
  const std::vector<int64_t> steps = {0, 50, 100, 150, 200};
  REQUIRE(first_reach(steps, {0, 5, 9.99, 10, 30}, 10) == 150);
  REQUIRE(first_reach(steps, {0, 12, 3, 15, 30}, 10) == 50);  // the first crossing, even if it falls back
  REQUIRE(first_reach(steps, {NAN, NAN, 11, 0, 0}, 10) == 100);
  REQUIRE(first_reach(steps, {0, 1, 2, 3, 4}, 10) == -1);

  // A hand-made curve of a 64-position probe: uniform alpha_1 is 0.0741, so the alpha onset is
  // the first step with alpha_1 >= 0.1482.
  const Config run = Config::from_string("stats: {eps: [0.1, 0.3], probe_len: 64}\nmodel: {context: 64}\n");
  RunCurve c;
  c.steps = steps;
  c.names = {"sink@0.1", "sink@0.3", "alpha1"};
  c.columns = {{30, 40, 50, 60, 70}, {0, 2, 8, 12, 20}, {0.074, 0.10, 0.148, 0.149, 0.2}};
  const Onset o = onset(c, run);
  REQUIRE(o.sink_step == 150);
  REQUIRE(o.alpha_step == 150);
  c.columns[2][2] = 0.1483;
  REQUIRE(onset(c, run).alpha_step == 100);
  // Without eps 0.3 there is no sink onset.
  const Config no03 = Config::from_string("stats: {eps: [0.1], probe_len: 64}\nmodel: {context: 64}\n");
  c.names[1] = "sink@0.2";
  REQUIRE(onset(c, no03).sink_step == -1);
}
