#include "train/run_dir.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "engine/error.h"

namespace fs = std::filesystem;

namespace sl::train {

StagedFile::StagedFile(std::string path, bool from_existing) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  fs::remove(tmp_);
  if (from_existing && fs::exists(path_)) fs::copy_file(path_, tmp_);
}

StagedFile::~StagedFile() {
  if (!committed_) {
    std::error_code ignored;
    fs::remove(tmp_, ignored);
  }
}

void StagedFile::commit() {
  fs::rename(tmp_, path_);
  committed_ = true;
}

std::string RunDir::checkpoint(int64_t step) const {
  char name[64];
  std::snprintf(name, sizeof name, "/step_%08lld.h5", (long long)step);
  return checkpoints() + name;
}

std::vector<int64_t> RunDir::checkpoint_steps() const {
  std::vector<int64_t> steps;
  if (!fs::is_directory(checkpoints())) return steps;
  for (auto& e : fs::directory_iterator(checkpoints())) {
    std::string n = e.path().filename().string();
    long long s;
    char tail[8] = {0};
    if (std::sscanf(n.c_str(), "step_%lld.%7s", &s, tail) == 2 && std::string(tail) == "h5") steps.push_back(s);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

void RunDir::abandon_checkpoints_after(int64_t step) const {
  for (int64_t s : checkpoint_steps())
    if (s > step) fs::rename(checkpoint(s), checkpoint(s) + ".abandoned");
}

RunDir create_run_dir(const std::string& path, bool overwrite) {
  if (fs::exists(path) && !fs::is_empty(path)) {
    SL_CHECK(overwrite, "run directory '" + path + "' already exists; use --resume " + path +
                            " to continue it, run.overwrite=true to replace it, or run.name=OTHER");
    // Overwriting deletes a whole tree: only ever one that a run created.
    SL_CHECK(fs::is_directory(path) && fs::exists(RunDir{path}.config()),
             "run.overwrite=true would delete '" + path + "', which is not a run directory (it has no config.yaml)");
    fs::remove_all(path);
  }
  fs::create_directories(path + "/checkpoints");
  return RunDir{path};
}

RunDir open_run_dir(const std::string& path) {
  RunDir r{path};
  SL_CHECK(fs::is_directory(path), "cannot resume: '" + path + "' is not a directory");
  SL_CHECK(fs::exists(r.config()), "cannot resume: '" + path + "' has no config.yaml (is it a run directory?)");
  fs::create_directories(r.checkpoints());
  return r;
}

}  // namespace sl::train
