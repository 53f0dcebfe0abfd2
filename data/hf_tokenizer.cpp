#include "data/hf_tokenizer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "engine/json.h"

namespace sl::data {

namespace {

// GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 bytes, in byte
// order, for U+0100 onwards (the space is U+0120).
std::array<char32_t, 256> byte_symbols() {
  std::array<char32_t, 256> s{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    s[b] = printable ? (char32_t)b : next++;
  }
  return s;
}

std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += (char)c;
  } else if (c < 0x800) {
    out += (char)(0xC0 | (c >> 6));
    out += (char)(0x80 | (c & 0x3F));
  } else {
    out += (char)(0xE0 | (c >> 12));
    out += (char)(0x80 | ((c >> 6) & 0x3F));
    out += (char)(0x80 | (c & 0x3F));
  }
  return out;
}

// A regex character class of the symbols, runs written as ranges; ASCII punctuation is escaped
// (literal in both Oniguruma, which `tokenizers` uses, and Python's re).
std::string char_set(std::vector<char32_t> cs) {
  std::sort(cs.begin(), cs.end());
  auto lit = [](char32_t c) {
    std::string s = c < 0x80 && !std::isalnum((int)c) ? "\\" : "";
    return s += utf8(c);
  };
  std::string out = "[";
  for (size_t i = 0; i < cs.size();) {
    size_t j = i;
    while (j + 1 < cs.size() && cs[j + 1] == cs[j] + 1) ++j;
    out += lit(cs[i]);
    if (j > i + 1) out += '-';
    if (j > i) out += lit(cs[j]);
    i = j + 1;
  }
  return out + "]";
}

// split_words over byte symbols, alternatives in the order split_words decides.
std::string split_regex(const std::array<char32_t, 256>& sym) {
  std::map<CharClass, std::vector<char32_t>> of;
  for (int b = 0; b < 256; ++b) of[char_class((unsigned char)b)].push_back(sym[b]);
  std::vector<char32_t> non_space = of[CharClass::Letter];
  non_space.insert(non_space.end(), of[CharClass::Digit].begin(), of[CharClass::Digit].end());
  non_space.insert(non_space.end(), of[CharClass::Punct].begin(), of[CharClass::Punct].end());
  const std::string L = char_set(of[CharClass::Letter]), D = char_set(of[CharClass::Digit]),
                    P = char_set(of[CharClass::Punct]), S = char_set(of[CharClass::Space]),
                    W = char_set(non_space), space = utf8(sym[' ']);
  const std::string full = "{1," + std::to_string(kMaxWordBytes) + "}",
                    after_space = "{1," + std::to_string(kMaxWordBytes - 1) + "}";
  return space + "(?:" + L + after_space + "|" + D + after_space + "|" + P + after_space + ")" +  // " word"
         "|" + L + full + "|" + D + full + "|" + P + full +                                       // "word"
         "|" + S + after_space + "(?=" + space + W + ")" +  // whitespace leaving its last space to a word
         "|" + S + full;
}

}  // namespace

HFTokenizer hf_tokenizer_json(const Tokenizer& tok) {
  const auto sym = byte_symbols();
  const int32_t bos = tok.bos();
  std::map<std::string, int32_t> id_of;
  std::vector<std::string> symbols(bos);
  for (int32_t id = 0; id < bos; ++id) {
    for (unsigned char b : tok.token_bytes(id)) symbols[id] += utf8(sym[b]);
    auto [it, fresh] = id_of.emplace(symbols[id], id);
    if (!fresh)
      return {"", "tokens " + std::to_string(it->second) + " and " + std::to_string(id) +
                      " are the same bytes, and a tokenizers vocabulary gives each string one id"};
  }
  if (id_of.count(kBosText)) return {"", std::string("token ") + std::to_string(id_of[kBosText]) +
                                             " is the text of the BOS token, " + kBosText};

  std::string vocab, merges;
  for (int32_t id = 0; id < bos; ++id) vocab += json_string(symbols[id]) + ":" + std::to_string(id) + ",";
  vocab += json_string(kBosText) + ":" + std::to_string(bos);
  for (auto [a, b] : tok.merges()) merges += json_string(symbols[a] + " " + symbols[b]) + ",";
  if (!merges.empty()) merges.pop_back();

  const std::string B = json_string(kBosText), ids = std::to_string(bos);
  auto special = [&](int type) { return "{\"SpecialToken\":{\"id\":" + B + ",\"type_id\":" + std::to_string(type) + "}}"; };
  auto sequence = [](const char* id, int type) {
    return std::string("{\"Sequence\":{\"id\":\"") + id + "\",\"type_id\":" + std::to_string(type) + "}}";
  };
  std::string j = "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\n";
  j += "\"added_tokens\":[{\"id\":" + ids + ",\"content\":" + B +
       ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\n";
  j += "\"normalizer\":null,\n";
  j += "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
       "\"trim_offsets\":false,\"use_regex\":false},{\"type\":\"Split\",\"pattern\":{\"Regex\":" +
       json_string(split_regex(sym)) + "},\"behavior\":\"Isolated\",\"invert\":false}]},\n";
  j += "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[" + special(0) + "," + sequence("A", 0) +
       "],\"pair\":[" + special(0) + "," + sequence("A", 0) + "," + special(1) + "," + sequence("B", 1) +
       "],\"special_tokens\":{" + B + ":{\"id\":" + B + ",\"ids\":[" + ids + "],\"tokens\":[" + B + "]}}},\n";
  j += "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false},\n";
  j += "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":null,"
       "\"end_of_word_suffix\":null,\"fuse_unk\":false,\n\"vocab\":{" + vocab + "},\n\"merges\":[" + merges + "]}}\n";
  return {j, ""};
}

}  // namespace sl::data
