#include <cstdio>

#include "cli/commands.h"
#include "data/files.h"
#include "engine/h5log.h"
#include "train/checkpointing.h"

namespace sl::cli {

const char* const kReplayHelp =
    "usage: sinklab replay runs/NAME [--every-checkpoint] [--data FILE] [--save-maps L,H[;L,H...]]\n\n"
    "Loads the run's newest checkpoint (or every checkpoint, in step order), runs the probe batch\n"
    "without gradients and writes the same attention statistics as training (attn/alpha,\n"
    "attn/sink_rate, ...; the step is the checkpoint's) to runs/NAME/replay.h5.\n"
    "--data FILE probes with windows of this text file instead of the validation probe batch.\n"
    "--save-maps 0,1 also stores the full attention weights of layer 0, head 1 (maps/layer0_head1).\n"
    "Plot with: /usr/bin/python3 scripts/plot_sinks.py runs/NAME\n";

int cmd_replay(const Args& args) {
  SL_CHECK(!args.empty() && args[0].rfind("--", 0) != 0, "missing run directory (see sinklab replay --help)");
  train::RunDir dir = train::open_run_dir(args[0]);
  bool every = false;
  std::string data_file;
  std::vector<std::pair<int64_t, int64_t>> maps;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--every-checkpoint") {
      every = true;
    } else if (args[i] == "--data" && i + 1 < args.size()) {
      data_file = args[++i];
    } else if (args[i] == "--save-maps" && i + 1 < args.size()) {
      std::string spec = args[++i];
      size_t pos = 0;
      while (pos < spec.size()) {
        size_t end = spec.find(';', pos);
        std::string item = spec.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        long long l, h;
        SL_CHECK(std::sscanf(item.c_str(), "%lld,%lld", &l, &h) == 2, "--save-maps wants LAYER,HEAD, got '" + item + "'");
        maps.push_back({l, h});
        pos = end == std::string::npos ? spec.size() : end + 1;
      }
    } else {
      throw Error("unknown or incomplete option '" + args[i] + "' (see sinklab replay --help)");
    }
  }
  Config cfg = Config::load(dir.config());
  ParamStore ps;
  auto task = train::make_task(cfg, ps);
  if (!data_file.empty()) task->set_probe_text(data::read_text_file(data_file));

  // A fresh file each time, moved into place only when complete.
  const std::string out = dir.path + "/replay.h5";
  train::StagedFile staged(out, false);
  {
    H5Log log(staged.tmp());
    log.set_attr("config", cfg.to_yaml());
    const train::Replayed r =
        train::replay_checkpoints(dir, {every, -1}, ps, "replay.h5", [&](int64_t step, size_t n, size_t count) {
          for (auto& row : task->probe_stats()) log.append(row.name, step, row.values.data(), row.shape);
          for (auto [l, h] : maps) {
            train::LogRow row = task->attention_map(l, h);
            log.append(row.name, step, row.values.data(), row.shape);
          }
          std::printf("\rreplay: checkpoint %zu/%zu (step %lld)", n + 1, count, (long long)step);
          std::fflush(stdout);
        });
    log.flush();
    std::printf("\nreplayed %s", r.str().c_str());
  }
  staged.commit();
  std::printf("\nwrote %s\n", out.c_str());
  return 0;
}

}  // namespace sl::cli
