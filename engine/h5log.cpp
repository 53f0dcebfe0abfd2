#include "engine/h5log.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <vector>

#include "engine/error.h"
#include "engine/h5_image.h"
#include "engine/hdf5_handle.h"

namespace sl {

namespace {

const std::string kStepSuffix = "_step";
// Rows per chunk aim at ~16 KiB of floats. A flush compresses every series' open chunk whole,
// so its size is what each flush costs; statistics rows compress no better in larger chunks.
constexpr int64_t kChunkFloats = 1 << 12;
constexpr int64_t kMaxChunkRows = 4096;
constexpr unsigned kGzipLevel = 3;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Grows `dataset` to first + count rows and writes `data` (count rows of row_shape) from row `first` on.
void write_rows(hid_t dataset, hid_t mem_type, int64_t first, int64_t count, const Shape& row_shape, const void* data,
                const std::string& where) {
  Shape full = row_shape;
  full.insert(full.begin(), first + count);
  std::vector<hsize_t> dims(full.begin(), full.end()), start(full.size(), 0), counts(dims);
  start[0] = first;
  counts[0] = count;
  h5::check(H5Dset_extent(dataset, dims.data()), where + ": extending");
  h5::Handle file_space(H5Dget_space(dataset), H5Sclose, where + ": reading the dataspace");
  h5::check(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, counts.data(), nullptr),
            where + ": selecting the new rows");
  h5::Handle mem_space(H5Screate_simple((int)counts.size(), counts.data(), nullptr), H5Sclose,
                       where + ": creating a rows dataspace");
  h5::check(H5Dwrite(dataset, mem_type, mem_space, file_space, H5P_DEFAULT, data), where + ": writing rows");
}

std::vector<int64_t> read_steps(hid_t dataset, const std::string& where) {
  std::vector<int64_t> steps(h5::extent(dataset).at(0));
  if (!steps.empty())
    h5::check(H5Dread(dataset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps.data()),
              where + ": reading steps");
  return steps;
}

}  // namespace

struct H5Log::Impl {
  // One logged quantity: its values and their steps, kept open between appends. Appended rows
  // wait in memory and go into the datasets a block at a time (at a flush, or once
  // kPendingRows have gathered): each write extends the dataset and selects its rows, which
  // costs as much for one row as for 32.
  struct Series {
    h5::Handle values, steps;
    Shape row_shape;
    int64_t rows = 0;  // with the pending ones
    int64_t last_step = 0;
    std::vector<float> pending;
    std::vector<int64_t> pending_steps;
  };
  static constexpr size_t kPendingRows = 32;

  std::string path;
  h5::Handle file;
  std::map<std::string, Series> series;  // declared after `file`: closed before it

  std::string where(const std::string& name) const { return "H5Log " + path + ", dataset '" + name + "'"; }

  void write_pending(const std::string& name, Series& s) {
    const int64_t n = (int64_t)s.pending_steps.size();
    if (n == 0) return;
    write_rows(s.values, H5T_NATIVE_FLOAT, s.rows - n, n, s.row_shape, s.pending.data(), where(name));
    write_rows(s.steps, H5T_NATIVE_INT64, s.rows - n, n, {}, s.pending_steps.data(), where(name) + kStepSuffix);
    s.pending.clear();
    s.pending_steps.clear();
  }

  void write_pending() {
    for (auto& [name, s] : series) write_pending(name, s);
  }

  Series open_series(const std::string& name, const Shape& row_shape) {
    const std::string at = where(name);
    const std::string step_name = name + kStepSuffix;
    Series s;
    if (h5::exists(file, name, at)) {
      s.values = h5::Handle(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, at + ": opening");
      s.steps = h5::Handle(H5Dopen2(file, step_name.c_str(), H5P_DEFAULT), H5Dclose,
                           at + ": opening its step dataset '" + step_name + "'");
      Shape shape = h5::extent(s.values);
      SL_CHECK(!shape.empty(), at + ": is a scalar, not a log of rows");
      s.row_shape.assign(shape.begin() + 1, shape.end());
      s.rows = shape[0];
      std::vector<int64_t> steps = read_steps(s.steps, at);
      SL_CHECK((int64_t)steps.size() == s.rows, at + ": has " + std::to_string(s.rows) + " rows but " +
                                                    std::to_string(steps.size()) + " steps");
      if (!steps.empty()) s.last_step = steps.back();
      return s;
    }
    Shape max = row_shape, chunk = row_shape, empty = row_shape;
    max.insert(max.begin(), -1);
    chunk.insert(chunk.begin(), std::clamp<int64_t>(kChunkFloats / shape_numel(row_shape), 1, kMaxChunkRows));
    empty.insert(empty.begin(), 0);
    h5::Handle lcpl = h5::create_intermediate_groups();
    auto create = [&](const std::string& n, hid_t type, const Shape& dims, const Shape& maxdims,
                      const Shape& chunk_dims) {
      h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, at + ": creating a property list");
      std::vector<hsize_t> c(chunk_dims.begin(), chunk_dims.end());
      h5::check(H5Pset_chunk(dcpl, (int)c.size(), c.data()), at + ": setting chunks");
      h5::check(H5Pset_shuffle(dcpl), at + ": enabling the shuffle filter");
      h5::check(H5Pset_deflate(dcpl, kGzipLevel), at + ": enabling gzip");
      h5::Handle space = h5::dataspace(dims, maxdims);
      return h5::Handle(H5Dcreate2(file, n.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT), H5Dclose,
                        where(n) + ": creating");
    };
    s.values = create(name, H5T_IEEE_F32LE, empty, max, chunk);
    s.steps = create(step_name, H5T_STD_I64LE, {0}, {-1}, {chunk[0]});
    s.row_shape = row_shape;
    return s;
  }
};

H5Log::H5Log(const std::string& path) : impl_(std::make_unique<Impl>()) {
  h5::silence_errors();
  impl_->path = path;
  h5::Handle fapl = h5::in_memory_access();
  if (std::filesystem::exists(path)) {
    impl_->file = h5::Handle(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl), H5Fclose,
                             "H5Log " + path + ": cannot open the existing file for appending");
  } else {
    impl_->file = h5::Handle(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl), H5Fclose,
                             "H5Log " + path + ": cannot create the file");
    flush();  // the file exists from the start
  }
}

// Publishes what was appended since the last flush: a log going out of scope (an error, a
// signal) keeps its rows. A failure here was already reported by the flush that raised it.
H5Log::~H5Log() {
  try {
    flush();
  } catch (const std::exception&) {
  }
}

void H5Log::append(const std::string& name, int64_t step, const float* row, const Shape& row_shape) {
  const std::string at = impl_->where(name);
  auto it = impl_->series.find(name);
  if (it == impl_->series.end()) {
    h5::check_name(name, "H5Log " + impl_->path);
    SL_CHECK(!ends_with(name, kStepSuffix),
             at + ": names ending in '" + kStepSuffix + "' are reserved for step indices");
    SL_CHECK(shape_numel(row_shape) > 0, at + ": rows must hold at least one value, got shape " +
                                             shape_str(row_shape));
    it = impl_->series.emplace(name, impl_->open_series(name, row_shape)).first;
  }
  Impl::Series& s = it->second;
  SL_CHECK(s.row_shape == row_shape,
           at + ": holds rows of shape " + shape_str(s.row_shape) + ", got a row of shape " + shape_str(row_shape));
  SL_CHECK(s.rows == 0 || step > s.last_step,
           at + ": step " + std::to_string(step) + " is not after its last step " + std::to_string(s.last_step) +
               " (call truncate_after() when resuming)");
  s.pending.insert(s.pending.end(), row, row + shape_numel(row_shape));
  s.pending_steps.push_back(step);
  s.rows += 1;
  s.last_step = step;
  if (s.pending_steps.size() >= Impl::kPendingRows) impl_->write_pending(name, s);
}

void H5Log::set_attr(const std::string& name, const std::string& value) {
  h5::write_string_attr(impl_->file, name, value);
}

void H5Log::flush() {
  impl_->write_pending();
  h5::publish(impl_->file, impl_->path, /*durable=*/false, "H5Log " + impl_->path);
}

const std::string& H5Log::path() const { return impl_->path; }

void H5Log::remove(const std::string& name) {
  impl_->series.erase(name);
  for (const std::string& n : {name, name + kStepSuffix})
    if (h5::exists(impl_->file, n, impl_->where(n)))
      h5::check(H5Ldelete(impl_->file, n.c_str(), H5P_DEFAULT), impl_->where(n) + ": removing");
}

void H5Log::truncate_after(int64_t step) {
  impl_->write_pending();
  impl_->series.clear();  // reopened on the next append, with the new row counts
  for (const std::string& step_name : h5::dataset_paths(impl_->file)) {
    if (!ends_with(step_name, kStepSuffix)) continue;
    const std::string name = step_name.substr(0, step_name.size() - kStepSuffix.size());
    if (!h5::exists(impl_->file, name, impl_->where(name))) continue;
    const std::string at = impl_->where(name);
    h5::Handle steps(H5Dopen2(impl_->file, step_name.c_str(), H5P_DEFAULT), H5Dclose, at + ": opening steps");
    h5::Handle values(H5Dopen2(impl_->file, name.c_str(), H5P_DEFAULT), H5Dclose, at + ": opening");
    std::vector<int64_t> logged = read_steps(steps, at);
    auto keep = (hsize_t)(std::find_if(logged.begin(), logged.end(), [&](int64_t s) { return s > step; }) -
                          logged.begin());
    if (keep == logged.size()) continue;
    Shape shape = h5::extent(values);
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    dims.at(0) = keep;
    h5::check(H5Dset_extent(values, dims.data()), at + ": truncating");
    h5::check(H5Dset_extent(steps, &keep), at + ": truncating its steps");
  }
}

}  // namespace sl
