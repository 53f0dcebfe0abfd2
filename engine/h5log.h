// A run's metrics and statistics in one HDF5 file, one row per logged step.
//
// Layout (readable with h5py while the run goes on, as of the last flush()):
//   /<name>        float32, shape [rows, ...row_shape], chunked along rows, shuffle + gzip 3
//   /<name>_step   int64, shape [rows]: the training step of each row of <name>
// A name's '/' separates groups ("attn/alpha" is dataset "alpha" in group "attn", with
// "attn/alpha_step" beside it), so metric names must not themselves end in "_step". Within a
// dataset steps strictly increase; after a resume, truncate_after(step) drops what the
// interrupted run logged beyond the checkpoint. The file is held in memory and each flush()
// replaces it on disk atomically (h5_image.h): a killed run, a full disk or a reader never sees
// a half-written file, only the complete file of some flush.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/tensor.h"

namespace sl {

class H5Log {
 public:
  // Opens `path` for appending if it exists (resume), else creates it (on disk at once).
  explicit H5Log(const std::string& path);
  ~H5Log();  // flushes
  H5Log(const H5Log&) = delete;
  H5Log& operator=(const H5Log&) = delete;

  // Appends `row` (row_shape, contiguous) at `step` to dataset `name`, creating it on first
  // use. Throws if the row shape differs from the dataset's or `step` is not after its last.
  // Rows reach the dataset a block at a time, and all of them at a flush.
  void append(const std::string& name, int64_t step, const float* row, const Shape& row_shape);
  void append(const std::string& name, int64_t step, float value) { append(name, step, &value, {}); }

  // A string attribute on the root group (run id, config text...); replaces an existing one.
  void set_attr(const std::string& name, const std::string& value);

  // Writes everything appended so far to the file, replacing it atomically (durable against a
  // killed process, not fsynced against power loss). Costs one write of the whole file, so call
  // it every few steps, not on every append. Throws naming the file ("disk full", ...).
  void flush();

  // Drops, in every dataset of the file, the rows from the first one with step > `step` on.
  void truncate_after(int64_t step);
  // Removes dataset `name` and its steps, if the file has them (an analysis measured again).
  void remove(const std::string& name);

  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sl
