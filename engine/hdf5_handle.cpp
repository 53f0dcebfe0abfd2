#include "engine/hdf5_handle.h"

#include <algorithm>
#include <utility>

#include "engine/error.h"

namespace sl::h5 {

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string error_detail() {
  std::string detail;
  // Walking upward starts at the innermost frame, where the library names the actual cause.
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* out) -> herr_t {
        if (n == 0 && e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &detail);
  return detail;
}

void fail(const std::string& what) {
  std::string detail = error_detail();
  throw Error(detail.empty() ? what : what + " (HDF5: " + detail + ")");
}

Handle::Handle(hid_t id, Closer close, const std::string& what) : id_(check(id, what)), close_(close) {}

Handle::Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    if (id_ >= 0) close_(id_);
    id_ = std::exchange(o.id_, -1);
    close_ = o.close_;
  }
  return *this;
}

Handle::~Handle() {
  if (id_ >= 0) close_(id_);
}

void Handle::close(const std::string& what) {
  hid_t id = std::exchange(id_, -1);
  if (id >= 0) check(close_(id), what);
}

Handle file_access(bool locking) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "creating a file access property list");
  check(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST), "setting HDF5 format bounds");
  check(H5Pset_file_locking(fapl, locking, true), "setting HDF5 file locking");
  return fapl;
}

Handle create_intermediate_groups() {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "creating a link creation property list");
  check(H5Pset_create_intermediate_group(lcpl, 1), "enabling intermediate group creation");
  return lcpl;
}

void check_name(const std::string& name, const std::string& what) {
  bool ok = !name.empty() && name.front() != '/' && name.back() != '/' && name.find("//") == std::string::npos;
  for (size_t start = 0; ok && start <= name.size();) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    ok = name.compare(start, end - start, ".") != 0;
    start = end + 1;
  }
  SL_CHECK(ok, what + ": name '" + name +
                   "' is not a valid HDF5 path (expected '/'-separated non-empty parts, none of them '.')");
}

bool exists(hid_t loc, const std::string& path, const std::string& where) {
  // H5Lexists needs every parent to exist, so test the prefixes in turn; it fails when a
  // parent is not a group.
  for (size_t end = path.find('/');; end = path.find('/', end + 1)) {
    std::string prefix = path.substr(0, end);
    htri_t found = H5Lexists(loc, prefix.c_str(), H5P_DEFAULT);
    if (found < 0) fail(where + ": cannot look up '" + prefix + "' (is a parent of it a dataset, not a group?)");
    if (found == 0) return false;
    if (end == std::string::npos) return true;
  }
}

Shape extent(hid_t dataset) {
  Handle space(H5Dget_space(dataset), H5Sclose, "reading a dataspace");
  int rank = check(H5Sget_simple_extent_ndims(space), "reading a dataspace rank");
  std::vector<hsize_t> dims(rank);
  check(H5Sget_simple_extent_dims(space, dims.data(), nullptr), "reading dataspace dimensions");
  return Shape(dims.begin(), dims.end());
}

Handle dataspace(const Shape& shape, const Shape& max) {
  if (shape.empty()) return Handle(H5Screate(H5S_SCALAR), H5Sclose, "creating a scalar dataspace");
  std::vector<hsize_t> dims(shape.begin(), shape.end()), maxdims(dims);
  for (size_t i = 0; i < max.size(); ++i) maxdims[i] = max[i] < 0 ? H5S_UNLIMITED : (hsize_t)max[i];
  return Handle(H5Screate_simple((int)dims.size(), dims.data(), maxdims.data()), H5Sclose,
                "creating a dataspace of shape " + shape_str(shape));
}

std::vector<std::string> dataset_paths(hid_t group) {
  std::vector<std::string> paths;
  check(H5Ovisit2(
            group, H5_INDEX_NAME, H5_ITER_INC,
            [](hid_t, const char* name, const H5O_info_t* info, void* out) -> herr_t {
              if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(out)->push_back(name);
              return 0;
            },
            &paths, H5O_INFO_BASIC),
        "listing datasets");
  return paths;
}

Handle string_type(size_t bytes) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose, "creating a string type");
  check(H5Tset_size(type, std::max<size_t>(bytes, 1)), "sizing a string type");
  check(H5Tset_strpad(type, H5T_STR_NULLPAD), "setting a string type's padding");
  check(H5Tset_cset(type, H5T_CSET_UTF8), "setting a string type's character set");
  return type;
}

std::string string_from(const std::vector<char>& raw) {
  size_t n = raw.size();
  while (n > 0 && raw[n - 1] == '\0') --n;
  return std::string(raw.data(), n);
}

void write_string_attr(hid_t obj, const std::string& name, const std::string& value) {
  if (check(H5Aexists(obj, name.c_str()), "looking up attribute '" + name + "'") > 0)
    check(H5Adelete(obj, name.c_str()), "replacing attribute '" + name + "'");
  Handle type = string_type(value.size());
  Handle space = dataspace({});
  Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
              "creating attribute '" + name + "'");
  std::vector<char> padded(H5Tget_size(type), '\0');
  std::copy(value.begin(), value.end(), padded.begin());
  check(H5Awrite(attr, type, padded.data()), "writing attribute '" + name + "'");
}

std::string read_string_attr(hid_t obj, const std::string& name) {
  Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "opening attribute '" + name + "'");
  Handle stored(H5Aget_type(attr), H5Tclose, "reading the type of attribute '" + name + "'");
  SL_CHECK(H5Tget_class(stored) == H5T_STRING && H5Tis_variable_str(stored) == 0,
           "attribute '" + name + "' is not a fixed-length string");
  std::vector<char> raw(H5Tget_size(stored));
  check(H5Aread(attr, stored, raw.data()), "reading attribute '" + name + "'");
  return string_from(raw);
}

}  // namespace sl::h5
