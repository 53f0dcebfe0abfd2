// A run directory: runs/NAME/ holding config.yaml (fully resolved), log.h5 (metrics and
// statistics) and checkpoints/step_NNNNNNNN.h5.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sl::train {

struct RunDir {
  std::string path;
  std::string config() const { return path + "/config.yaml"; }
  std::string log() const { return path + "/log.h5"; }
  std::string checkpoints() const { return path + "/checkpoints"; }
  std::string checkpoint(int64_t step) const;
  // Steps of the complete checkpoints present, ascending (temporary files are ignored).
  std::vector<int64_t> checkpoint_steps() const;
  // Renames the checkpoints after `step` to step_N.h5.abandoned (kept for inspection, never
  // resumed from): after a rollback they belong to a trajectory the run left.
  void abandon_checkpoints_after(int64_t step) const;
};

// A file of the run (replay.h5, analysis.h5) written whole: built at PATH.tmp (from a copy of
// PATH when `from_existing`), renamed over PATH by commit(), and removed unless committed, so
// that a failure leaves the run as it was.
class StagedFile {
 public:
  StagedFile(std::string path, bool from_existing);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  const std::string& tmp() const { return tmp_; }
  void commit();

 private:
  std::string path_, tmp_;
  bool committed_ = false;
};

// Creates runs/NAME for a new run. Refuses an existing non-empty directory unless overwrite, and
// even then one without a config.yaml (overwrite deletes the directory).
RunDir create_run_dir(const std::string& path, bool overwrite);
// Opens an existing run for --resume; names what is missing if it is not a run.
RunDir open_run_dir(const std::string& path);

}  // namespace sl::train
