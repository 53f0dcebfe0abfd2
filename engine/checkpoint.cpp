#include "engine/checkpoint.h"

#include <algorithm>
#include <array>
#include <filesystem>

#include "engine/autograd.h"
#include "engine/h5_image.h"
#include "engine/hdf5_handle.h"

namespace sl {

namespace {

const char* const kFormat = "sinklab-checkpoint-1";
const char* const kSections[] = {"tensors", "ints", "strings"};

const std::array<uint32_t, 256> kCrcTable = [] {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}();

h5::Handle create_dataset(hid_t loc, const std::string& name, hid_t type, const Shape& shape,
                          const std::string& where) {
  h5::check_name(name, where);
  h5::Handle lcpl = h5::create_intermediate_groups();
  h5::Handle space = h5::dataspace(shape);
  return h5::Handle(H5Dcreate2(loc, name.c_str(), type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
                    where + ": creating dataset '" + name + "'");
}

void write_crc(hid_t dataset, uint32_t crc, const std::string& where) {
  h5::Handle space = h5::dataspace({});
  h5::Handle attr(H5Acreate2(dataset, "crc32", H5T_STD_U32LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                  where + ": creating its crc32 attribute");
  h5::check(H5Awrite(attr, H5T_NATIVE_UINT32, &crc), where + ": writing its crc32 attribute");
}

// Compares the stored checksum of `dataset` (called `name` in messages) with `crc`.
void verify_crc(hid_t dataset, uint32_t crc, const std::string& where, const std::string& name) {
  SL_CHECK(h5::check(H5Aexists(dataset, "crc32"), where + ": looking up the checksum of dataset " + name) > 0,
           where + ": dataset " + name + " has no crc32 attribute");
  h5::Handle attr(H5Aopen(dataset, "crc32", H5P_DEFAULT), H5Aclose, where + ": opening the checksum of " + name);
  uint32_t stored = 0;
  h5::check(H5Aread(attr, H5T_NATIVE_UINT32, &stored), where + ": reading the checksum of dataset " + name);
  SL_CHECK(stored == crc, where + ": checksum mismatch in dataset " + name + " (the file is corrupted)");
}

void write_tensor(hid_t loc, const std::string& name, const Tensor& t, bool checksum, const std::string& where) {
  SL_CHECK(t.defined(), where + ": tensor '" + name + "' is undefined");
  Tensor c = t.is_contiguous() ? t : t.detach().contiguous();
  h5::Handle ds = create_dataset(loc, name, H5T_IEEE_F32LE, c.shape(), where);
  if (c.numel() > 0)
    h5::check(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data()),
              where + ": writing dataset '" + name + "'");
  if (checksum) write_crc(ds, crc32(c.data(), c.numel() * sizeof(float)), where);
}

// `section` is the group's path, used to name the dataset in messages ("tensors/param/w").
Tensor read_tensor(hid_t loc, const std::string& section, const std::string& name, bool checksum,
                   const std::string& where) {
  std::string full = section.empty() ? name : section + "/" + name;
  h5::Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose, where + ": opening dataset " + full);
  Tensor t = Tensor::empty(h5::extent(ds));
  if (t.numel() > 0)
    h5::check(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data()),
              where + ": reading dataset " + full);
  if (checksum) verify_crc(ds, crc32(t.data(), t.numel() * sizeof(float)), where, full);
  return t;
}

void write_ints(hid_t loc, const std::string& name, const std::vector<int64_t>& v, const std::string& where) {
  h5::Handle ds = create_dataset(loc, name, H5T_STD_I64LE, {(int64_t)v.size()}, where);
  if (!v.empty())
    h5::check(H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
              where + ": writing dataset '" + name + "'");
  write_crc(ds, crc32(v.data(), v.size() * sizeof(int64_t)), where);
}

std::vector<int64_t> read_ints(hid_t loc, const std::string& name, const std::string& where) {
  std::string full = "ints/" + name;
  h5::Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose, where + ": opening dataset " + full);
  Shape shape = h5::extent(ds);
  SL_CHECK(shape.size() == 1, where + ": dataset " + full + " has shape " + shape_str(shape) + ", expected 1-D");
  std::vector<int64_t> v(shape[0]);
  if (!v.empty())
    h5::check(H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
              where + ": reading dataset " + full);
  verify_crc(ds, crc32(v.data(), v.size() * sizeof(int64_t)), where, full);
  return v;
}

void write_string(hid_t loc, const std::string& name, const std::string& s, const std::string& where) {
  h5::Handle type = h5::string_type(s.size());
  h5::Handle ds = create_dataset(loc, name, type, {}, where);
  std::vector<char> padded(H5Tget_size(type), '\0');
  std::copy(s.begin(), s.end(), padded.begin());
  h5::check(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, padded.data()),
            where + ": writing dataset '" + name + "'");
  write_crc(ds, crc32(s.data(), s.size()), where);
}

std::string read_string(hid_t loc, const std::string& name, const std::string& where) {
  std::string full = "strings/" + name;
  h5::Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose, where + ": opening dataset " + full);
  h5::Handle stored(H5Dget_type(ds), H5Tclose, where + ": reading the type of dataset " + full);
  SL_CHECK(H5Tget_class(stored) == H5T_STRING && H5Tis_variable_str(stored) == 0 && h5::extent(ds).empty(),
           where + ": dataset " + full + " is not a fixed-length string");
  std::vector<char> raw(H5Tget_size(stored));
  h5::check(H5Dread(ds, stored, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()), where + ": reading dataset " + full);
  std::string s = h5::string_from(raw);
  verify_crc(ds, crc32(s.data(), s.size()), where, full);
  return s;
}

h5::Handle open_for_reading(const std::string& path, const std::string& where, const std::string& what) {
  SL_CHECK(std::filesystem::exists(path), where + ": file not found");
  h5::Handle fapl = h5::file_access(false);
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
  if (id < 0) h5::fail(where + ": not a readable HDF5 " + what + " (truncated, corrupted or not HDF5)");
  return h5::Handle(id, H5Fclose, where);
}

}  // namespace

uint32_t crc32(const void* data, size_t bytes, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < bytes; ++i) crc = kCrcTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

const Tensor& Checkpoint::tensor(const std::string& name, const Shape& expected) const {
  auto it = tensors.find(name);
  SL_CHECK(it != tensors.end(), "checkpoint has no tensor '" + name + "'");
  SL_CHECK(it->second.shape() == expected, "checkpoint tensor '" + name + "' has shape " +
                                               shape_str(it->second.shape()) + ", expected " + shape_str(expected));
  return it->second;
}

const std::vector<int64_t>& Checkpoint::integers(const std::string& name) const {
  auto it = ints.find(name);
  SL_CHECK(it != ints.end(), "checkpoint has no integer entry '" + name + "'");
  return it->second;
}

const std::string& Checkpoint::text(const std::string& name) const {
  auto it = strings.find(name);
  SL_CHECK(it != strings.end(), "checkpoint has no string entry '" + name + "'");
  return it->second;
}

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  h5::silence_errors();
  const std::string where = "writing checkpoint " + path;
  // Built in memory and published whole, so a kill or a full disk never leaves a partial file.
  h5::Handle fapl = h5::in_memory_access();
  h5::Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose, where + ": cannot create it");
  h5::write_string_attr(file, "format", kFormat);
  std::array<h5::Handle, 3> sections;
  for (int i = 0; i < 3; ++i)
    sections[i] = h5::Handle(H5Gcreate2(file, kSections[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                             where + ": creating group " + kSections[i]);
  for (auto& [name, t] : ckpt.tensors) write_tensor(sections[0], name, t, true, where);
  for (auto& [name, v] : ckpt.ints) write_ints(sections[1], name, v, where);
  for (auto& [name, s] : ckpt.strings) write_string(sections[2], name, s, where);
  for (auto& s : sections) s.close(where);
  h5::publish(file, path, /*durable=*/true, where);
}

Checkpoint load_checkpoint(const std::string& path) {
  h5::silence_errors();
  const std::string where = "checkpoint " + path;
  try {
    h5::Handle file = open_for_reading(path, where, "checkpoint");
    bool marked = h5::check(H5Aexists(file, "format"), where + ": reading the root attributes") > 0 &&
                  h5::read_string_attr(file, "format") == kFormat;
    SL_CHECK(marked, where + ": not a sinklab checkpoint (root attribute 'format' is not '" + kFormat + "')");
    Checkpoint ckpt;
    for (int i = 0; i < 3; ++i) {
      const std::string section = kSections[i];
      SL_CHECK(h5::exists(file, section, where), where + ": group '" + section + "' is missing");
      h5::Handle group(H5Gopen2(file, section.c_str(), H5P_DEFAULT), H5Gclose, where + ": opening group " + section);
      for (const std::string& name : h5::dataset_paths(group)) {
        if (i == 0) ckpt.tensors[name] = read_tensor(group, section, name, true, where);
        if (i == 1) ckpt.ints[name] = read_ints(group, name, where);
        if (i == 2) ckpt.strings[name] = read_string(group, name, where);
      }
    }
    return ckpt;
  } catch (const Error& e) {
    // Generic HDF5 helpers (listing datasets, string attributes) do not know the file.
    if (std::string(e.what()).find(where) == 0) throw;
    throw Error(where + ": " + e.what());
  }
}

void write_tensors_h5(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  h5::silence_errors();
  const std::string where = "writing " + path;
  h5::Handle fapl = h5::file_access(false);
  h5::Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose, where + ": cannot create it");
  for (auto& [name, t] : tensors) write_tensor(file, name, t, false, where);
  file.close(where + ": closing it");
}

std::map<std::string, Tensor> read_tensors_h5(const std::string& path) {
  h5::silence_errors();
  const std::string where = "reading " + path;
  h5::Handle file = open_for_reading(path, where, "file");
  std::map<std::string, Tensor> tensors;
  for (const std::string& name : h5::dataset_paths(file)) tensors[name] = read_tensor(file, "", name, false, where);
  return tensors;
}

}  // namespace sl
