// Owned HDF5 identifiers and the translation of HDF5 failures into sl::Error. Checkpoints and
// the metric log both speak HDF5 through these. HDF5's own error-stack printing is silenced, so
// a failure reaches the user as one message naming the file and the problem.
#pragma once
#include <hdf5.h>

#include <string>
#include <vector>

#include "engine/tensor.h"

namespace sl::h5 {

// Turns off HDF5's printing of its error stack (process-wide). Every entry point calls it.
void silence_errors();

// The innermost message on HDF5's current error stack ("" if empty): the library's reason.
std::string error_detail();

// Throws sl::Error("<what>: <HDF5's reason>").
[[noreturn]] void fail(const std::string& what);

// Passes through the result of an HDF5 call, failing when it is a negative id or status.
template <class T>
T check(T result, const std::string& what) {
  if (result < 0) fail(what);
  return result;
}

// An HDF5 identifier closed by its matching H5?close when the handle goes away.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close, const std::string& what);  // checks `id`
  Handle(Handle&& o) noexcept;
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();

  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now and reports failure (closing a file writes its metadata).
  void close(const std::string& what);

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// A file access property list for files we write: checksummed (v1.8+) metadata, so that
// corruption of HDF5's own structures is detected too. `locking` off lets readers (h5py) open
// a file that a long-running writer keeps open.
Handle file_access(bool locking);

// A link creation property list that creates missing intermediate groups ("a/b/c").
Handle create_intermediate_groups();

// Rejects names HDF5 would misread as paths: empty, leading/trailing '/', "//", "." parts.
void check_name(const std::string& name, const std::string& what);

// Whether `path` (relative, '/'-separated) names an object under `loc`; `where` prefixes errors.
bool exists(hid_t loc, const std::string& path, const std::string& where);

// The extent of a dataset (rank 0 for a scalar).
Shape extent(hid_t dataset);

// A simple dataspace of `shape` (scalar for rank 0); `max` gives maximum dims (-1: unlimited).
Handle dataspace(const Shape& shape, const Shape& max = {});

// Paths (relative to `group`) of every dataset below it, in name order.
std::vector<std::string> dataset_paths(hid_t group);

// Strings are stored as fixed-length UTF-8 (NUL-padded, at least one byte), not as
// variable-length strings: those live in HDF5's global heap, which carries no checksum, and
// a corrupted heap crashes the library instead of failing a call.
Handle string_type(size_t bytes);
// The string held in raw fixed-length bytes: trailing NUL padding removed.
std::string string_from(const std::vector<char>& raw);

// String attributes (h5py reads them as bytes). Writing replaces an existing one.
void write_string_attr(hid_t obj, const std::string& name, const std::string& value);
std::string read_string_attr(hid_t obj, const std::string& name);

}  // namespace sl::h5
