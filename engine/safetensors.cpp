#include "engine/safetensors.h"

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/autograd.h"
#include "engine/json.h"

namespace sl {

static_assert(std::endian::native == std::endian::little, "safetensors stores little-endian floats as they are in memory");

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Entries end in ',', the last one's dropped below.
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (auto& [k, v] : metadata) header += json_string(k) + ":" + json_string(v) + ",";
    header.back() = '}';
    header += ",";
  }
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {
    SL_CHECK(!name.empty() && name != "__metadata__", "safetensors: '" + name + "' cannot name a tensor");
    std::string shape;
    for (int64_t d : t.shape()) shape += std::to_string(d) + ",";
    if (!shape.empty()) shape.pop_back();
    const uint64_t bytes = (uint64_t)t.numel() * sizeof(float);
    header += json_string(name) + ":{\"dtype\":\"F32\",\"shape\":[" + shape + "],\"data_offsets\":[" +
              std::to_string(offset) + "," + std::to_string(offset + bytes) + "]},";
    offset += bytes;
  }
  if (header.back() == ',') header.pop_back();
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), std::fclose);
  if (!f) throw Error("safetensors: cannot create " + path + ": " + std::strerror(errno));
  auto write = [&](const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f.get()) != n) throw Error("safetensors: cannot write " + path + ": " + std::strerror(errno));
  };
  const uint64_t n = header.size();
  write(&n, sizeof n);
  write(header.data(), header.size());
  for (auto& [name, t] : tensors) {
    Tensor c = t.contiguous();
    write(c.data(), (size_t)c.numel() * sizeof(float));
  }
  std::FILE* raw = f.release();
  if (std::fclose(raw) != 0) throw Error("safetensors: cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace sl
