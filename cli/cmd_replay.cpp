#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "engine/checkpoint.h"
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
  auto steps = dir.checkpoint_steps();
  SL_CHECK(!steps.empty(), dir.path + " has no checkpoints to replay");
  if (!every) std::reverse(steps.begin(), steps.end());  // the newest that reads back intact

  Config cfg = Config::load(dir.config());
  ParamStore ps;
  auto task = train::make_task(cfg, ps);
  if (!data_file.empty()) task->set_probe_text(data::read_text_file(data_file));

  // A fresh file each time, moved into place only when complete.
  const std::string out = dir.path + "/replay.h5", tmp = out + ".tmp";
  std::filesystem::remove(tmp);
  {
    H5Log log(tmp);
    log.set_attr("config", cfg.to_yaml());
    // A corrupt checkpoint is skipped with a warning, as --resume does, and named at the end.
    std::vector<std::string> skipped;
    size_t replayed = 0;
    for (size_t n = 0; n < steps.size() && (every || replayed == 0); ++n) {
      const std::string path = dir.checkpoint(steps[n]);
      try {
        train::load_params(load_checkpoint(path), ps, path);
      } catch (const Error& e) {
        std::fprintf(stderr, "%swarning: skipping unreadable checkpoint: %s\n", replayed ? "\n" : "", e.what());
        skipped.push_back(path);
        continue;
      }
      ++replayed;
      for (auto& r : task->probe_stats()) log.append(r.name, steps[n], r.values.data(), r.shape);
      for (auto [l, h] : maps) {
        train::LogRow r = task->attention_map(l, h);
        log.append(r.name, steps[n], r.values.data(), r.shape);
      }
      std::printf("\rreplay: checkpoint %zu/%zu (step %lld)", n + 1, steps.size(), (long long)steps[n]);
      std::fflush(stdout);
    }
    SL_CHECK(replayed > 0, dir.path + " has no checkpoint that reads back intact (" + std::to_string(skipped.size()) +
                               " unreadable); replay.h5 was left as it was");
    log.flush();
    std::printf("\nreplayed %zu checkpoint%s", replayed, replayed == 1 ? "" : "s");
    if (!skipped.empty()) {
      std::printf("; skipped %zu unreadable:", skipped.size());
      for (const std::string& p : skipped) std::printf(" %s", p.c_str());
    }
  }
  std::filesystem::rename(tmp, out);
  std::printf("\nwrote %s\n", out.c_str());
  return 0;
}

}  // namespace sl::cli
