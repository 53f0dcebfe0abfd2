#include "engine/h5_image.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include "engine/error.h"

namespace sl::h5 {

namespace {

std::string cause(int err) {
  std::string s = std::strerror(err);
  return err == ENOSPC || err == EDQUOT ? "disk full (" + s + ")" : s;
}

// write() until done; returns 0 or the errno of the failure.
int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return errno;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

// Bob Jenkins' lookup3 hash (hashlittle, byte by byte), which HDF5 uses for metadata checksums.
uint32_t lookup3(const unsigned char* k, size_t length) {
  auto rot = [](uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  uint32_t a, b, c;
  a = b = c = 0xdeadbeef + (uint32_t)length;
  auto word = [&](const unsigned char* p, size_t n) {
    uint32_t w = 0;
    for (size_t i = 0; i < n && i < 4; ++i) w += (uint32_t)p[i] << (8 * i);
    return w;
  };
  while (length > 12) {
    a += word(k, 4), b += word(k + 4, 4), c += word(k + 8, 4);
    a -= c, a ^= rot(c, 4), c += b;
    b -= a, b ^= rot(a, 6), a += c;
    c -= b, c ^= rot(b, 8), b += a;
    a -= c, a ^= rot(c, 16), c += b;
    b -= a, b ^= rot(a, 19), a += c;
    c -= b, c ^= rot(b, 4), b += a;
    length -= 12, k += 12;
  }
  if (length == 0) return c;
  a += word(k, length), b += length > 4 ? word(k + 4, length - 4) : 0, c += length > 8 ? word(k + 8, length - 8) : 0;
  c ^= b, c -= rot(b, 14);
  a ^= c, a -= rot(c, 11);
  b ^= a, b -= rot(a, 25);
  c ^= b, c -= rot(b, 16);
  a ^= c, a -= rot(c, 4);
  b ^= a, b -= rot(a, 14);
  c ^= b, c -= rot(b, 24);
  return c;
}

// H5Fget_file_image (1.10) zeroes the "file is open for writing" flags in the image's superblock
// but leaves its checksum as it was, so a version 2/3 superblock would fail to open: recompute it.
// Layout: signature (8), version, offset size O, length size, flags, then 4 addresses of O bytes
// and the checksum of everything before it.
void reseal_superblock(std::vector<char>& image, const std::string& where) {
  const auto* u = reinterpret_cast<unsigned char*>(image.data());
  SL_CHECK(image.size() >= 12 && std::memcmp(u, "\x89HDF\r\n\x1a\n", 8) == 0,
           where + ": the HDF5 image does not start with a superblock");
  if (u[8] < 2) return;  // versions 0 and 1 carry no checksum
  const size_t body = 12 + 4 * (size_t)u[9];
  SL_CHECK(image.size() >= body + 4, where + ": the HDF5 image is shorter than its superblock");
  uint32_t sum = lookup3(u, body);
  for (int i = 0; i < 4; ++i) image[body + i] = char(sum >> (8 * i));
}

}  // namespace

Handle in_memory_access() {
  Handle fapl = file_access(false);
  constexpr size_t kGrowBy = 1 << 20;  // the image grows in steps of 1 MiB
  check(H5Pset_fapl_core(fapl, kGrowBy, /*backing_store=*/0), "selecting the in-memory HDF5 driver");
  return fapl;
}

void publish(hid_t file, const std::string& path, bool durable, const std::string& where) {
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), where + ": flushing metadata into the image");
  ssize_t size = check(H5Fget_file_image(file, nullptr, 0), where + ": sizing the file image");
  std::vector<char> image((size_t)size);
  check(H5Fget_file_image(file, image.data(), image.size()), where + ": copying the file image");
  reseal_superblock(image, where);

  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(where + ": cannot create " + tmp + ": " + cause(errno) + "; " + path + " is left as it was");
  int err = write_all(fd, image.data(), image.size());
  if (!err && durable && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (!err && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    throw Error(where + ": cannot write " + tmp + ": " + cause(err) + "; " + path + " is left as it was");
  }
  if (!durable) return;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  err = dfd < 0 || ::fsync(dfd) != 0 ? errno : 0;
  if (dfd >= 0) ::close(dfd);
  SL_CHECK(!err, where + ": cannot sync the directory of " + path + ": " + cause(err));
}

}  // namespace sl::h5
