#include "data/gzip.h"

#include <array>
#include <cstdint>
#include <vector>

#include "engine/error.h"

namespace sl::data {

bool is_gzip(const std::string& b) { return b.size() >= 2 && (uint8_t)b[0] == 0x1f && (uint8_t)b[1] == 0x8b; }

namespace {

// Canonical Huffman code, decoded bit by bit from the count of codes of each length.
struct Huffman {
  std::array<uint16_t, 16> count{};
  std::vector<uint16_t> symbol;
};

Huffman build(const uint8_t* lengths, int n) {
  Huffman h;
  h.symbol.resize(n);
  for (int i = 0; i < n; ++i) h.count[lengths[i]]++;
  h.count[0] = 0;
  std::array<uint16_t, 16> offs{};
  for (int l = 1; l < 16; ++l) offs[l] = offs[l - 1] + h.count[l - 1];
  for (int i = 0; i < n; ++i)
    if (lengths[i]) h.symbol[offs[lengths[i]]++] = (uint16_t)i;
  return h;
}

struct Inflater {
  const uint8_t* in;
  size_t n, pos = 0;
  uint32_t bitbuf = 0;
  int bitcnt = 0;
  std::string& out;
  const std::string& what;

  void need(bool ok) { SL_CHECK(ok, what + ": corrupt or truncated gzip data"); }

  uint32_t bits(int k) {
    while (bitcnt < k) {
      need(pos < n);
      bitbuf |= (uint32_t)in[pos++] << bitcnt;
      bitcnt += 8;
    }
    uint32_t v = bitbuf & ((1u << k) - 1);
    bitbuf >>= k;
    bitcnt -= k;
    return v;
  }

  int decode(const Huffman& h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; ++len) {
      code |= (int)bits(1);
      int c = h.count[len];
      if (code - c < first) return h.symbol[index + (code - first)];
      index += c;
      first = (first + c) << 1;
      code <<= 1;
    }
    need(false);
    return -1;
  }

  void stored() {
    bitbuf = 0, bitcnt = 0;  // align to a byte
    need(pos + 4 <= n);
    uint32_t len = in[pos] | in[pos + 1] << 8;
    pos += 4;
    need(pos + len <= n);
    out.append((const char*)in + pos, len);
    pos += len;
  }

  void codes(const Huffman& lit, const Huffman& dist) {
    static const uint16_t len_base[] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                        31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const uint8_t len_extra[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                        2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static const uint16_t dist_base[] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                         193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    static const uint8_t dist_extra[] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                         6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
    for (;;) {
      int sym = decode(lit);
      if (sym < 256) {
        out.push_back((char)sym);
      } else if (sym == 256) {
        return;
      } else {
        sym -= 257;
        need(sym < 29);
        size_t len = len_base[sym] + bits(len_extra[sym]);
        int d = decode(dist);
        need(d < 30);
        size_t back = dist_base[d] + bits(dist_extra[d]);
        need(back <= out.size());
        size_t from = out.size() - back;
        for (size_t i = 0; i < len; ++i) out.push_back(out[from + i]);  // may overlap itself
      }
    }
  }

  void fixed_block() {
    static const auto tables = [] {
      uint8_t l[288];
      for (int i = 0; i < 144; ++i) l[i] = 8;
      for (int i = 144; i < 256; ++i) l[i] = 9;
      for (int i = 256; i < 280; ++i) l[i] = 7;
      for (int i = 280; i < 288; ++i) l[i] = 8;
      uint8_t d[30];
      for (auto& x : d) x = 5;
      return std::pair{build(l, 288), build(d, 30)};
    }();
    codes(tables.first, tables.second);
  }

  void dynamic_block() {
    int nlen = bits(5) + 257, ndist = bits(5) + 1, ncode = bits(4) + 4;
    need(nlen <= 286 && ndist <= 30);
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    uint8_t lengths[320] = {};
    for (int i = 0; i < ncode; ++i) lengths[order[i]] = (uint8_t)bits(3);
    Huffman lencode = build(lengths, 19);
    for (int i = 0; i < 320; ++i) lengths[i] = 0;
    for (int i = 0; i < nlen + ndist;) {
      int sym = decode(lencode);
      if (sym < 16) {
        lengths[i++] = (uint8_t)sym;
        continue;
      }
      uint8_t value = 0;
      int repeat;
      if (sym == 16) {
        need(i > 0);
        value = lengths[i - 1];
        repeat = 3 + bits(2);
      } else if (sym == 17) {
        repeat = 3 + bits(3);
      } else {
        repeat = 11 + bits(7);
      }
      need(i + repeat <= nlen + ndist);
      while (repeat--) lengths[i++] = value;
    }
    codes(build(lengths, nlen), build(lengths + nlen, ndist));
  }

  void run() {
    for (bool last = false; !last;) {
      last = bits(1);
      int type = bits(2);
      if (type == 0) stored();
      else if (type == 1) fixed_block();
      else if (type == 2) dynamic_block();
      else need(false);
    }
    bitbuf = 0, bitcnt = 0;
  }
};

}  // namespace

std::string gunzip(const std::string& bytes, const std::string& what) {
  std::string out;
  const uint8_t* p = (const uint8_t*)bytes.data();
  size_t pos = 0;
  SL_CHECK(is_gzip(bytes), what + ": not a gzip file (bad magic)");
  while (pos + 10 <= bytes.size() && p[pos] == 0x1f && p[pos + 1] == 0x8b) {
    SL_CHECK(p[pos + 2] == 8, what + ": unsupported gzip compression method");
    int flags = p[pos + 3];
    pos += 10;
    auto need = [&](size_t k) { SL_CHECK(pos + k <= bytes.size(), what + ": truncated gzip header"); };
    if (flags & 4) {  // FEXTRA
      need(2);
      size_t xlen = p[pos] | p[pos + 1] << 8;
      need(2 + xlen);
      pos += 2 + xlen;
    }
    for (int f : {8, 16})  // FNAME, FCOMMENT: zero-terminated
      if (flags & f) {
        while (pos < bytes.size() && p[pos]) ++pos;
        need(1);
        ++pos;
      }
    if (flags & 2) pos += 2;  // FHCRC
    need(0);
    size_t start = out.size();
    Inflater inf{p + pos, bytes.size() - pos, 0, 0, 0, out, what};
    inf.run();
    pos += inf.pos;
    need(8);
    uint32_t isize = p[pos + 4] | p[pos + 5] << 8 | p[pos + 6] << 16 | (uint32_t)p[pos + 7] << 24;
    SL_CHECK((uint32_t)(out.size() - start) == isize, what + ": gzip size check failed (corrupt data)");
    pos += 8;
  }
  return out;
}

}  // namespace sl::data
