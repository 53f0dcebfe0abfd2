// Checkpoints: named float tensors, int64 vectors and strings in one HDF5 file, written
// atomically and verified on load. The format is generic (the trainer decides the names:
// "param/blocks.0.attn.wq", "optim/m", "rng/data", "step", "config"...).
//
// File layout (readable with h5py):
//   /tensors/<name>   float32 dataset of the tensor's shape (scalar dataspace for rank 0)
//   /ints/<name>      int64 1-D dataset
//   /strings/<name>   fixed-length UTF-8 string (NUL-padded), scalar dataspace; h5py reads bytes
// A name's '/' separates HDF5 groups ("param/blocks.0.attn.wq" is dataset "blocks.0.attn.wq"
// in group "tensors/param"); dots are plain characters. Every dataset carries a uint32
// attribute "crc32": the CRC-32 (IEEE, as zlib.crc32) of its raw little-endian bytes (a
// string's UTF-8 bytes). The root attribute "format" is "sinklab-checkpoint-1". Strings lose
// trailing NUL characters (they are the padding).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace sl {

struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::vector<int64_t>> ints;
  std::map<std::string, std::string> strings;

  // Lookups that throw sl::Error naming the missing entry or the shape mismatch.
  const Tensor& tensor(const std::string& name, const Shape& expected) const;
  const std::vector<int64_t>& integers(const std::string& name) const;
  const std::string& text(const std::string& name) const;
};

// Builds the file in memory, writes it to PATH.tmp, fsyncs it, renames it over PATH and fsyncs
// the directory, so PATH always holds either the previous checkpoint or the complete new one. On
// failure the temporary file is removed and sl::Error names the file and the cause ("disk full").
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);

// Reads every entry and verifies its checksum. Throws sl::Error naming the file, the dataset
// and the problem ("not a readable HDF5 checkpoint", "checksum mismatch in dataset X", ...).
Checkpoint load_checkpoint(const std::string& path);

// Plain float32 datasets named as above but at the root, without checksums or atomic
// replacement: for exchanging arrays with Python (h5py / PyTorch) in tests. Reading converts
// any numeric dataset (e.g. float64 from numpy) to float32.
void write_tensors_h5(const std::string& path, const std::map<std::string, Tensor>& tensors);
std::map<std::string, Tensor> read_tensors_h5(const std::string& path);

// CRC-32 (IEEE 802.3, reflected, as zlib.crc32); pass a previous result as `crc` to continue.
uint32_t crc32(const void* data, size_t bytes, uint32_t crc = 0);

}  // namespace sl
