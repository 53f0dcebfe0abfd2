// A sinklab tokenizer as the tokenizer.json of Hugging Face's `tokenizers` library (read by
// tokenizers.Tokenizer.from_file and by transformers' PreTrainedTokenizerFast), made to give the
// same ids as Tokenizer::encode for every UTF-8 text:
//   - bytes become symbols by GPT-2's byte-to-unicode table (the ByteLevel pre-tokenizer with
//     its own regex off), so the 256 byte tokens are single symbols;
//   - split_words becomes one Split regex over those symbols: the same classes, the same
//     leading space, the same cut after kMaxWordBytes, the same space left to the next word;
//   - the merges keep their order (the rank), and `tokenizers` applies the lowest rank first,
//     leftmost first, which is Tokenizer::encode's order: a merge's parts are older tokens;
//   - BOS is the special token kBosText; the post-processor puts it in front of a text, as a
//     document starts in the corpus (encode with add_special_tokens=False for the text alone).
// Where `tokenizers` differs anyway: a literal kBosText in a text is read as BOS (as for every
// special token there), and its strings are UTF-8, so byte strings that are not can't be encoded.
#pragma once
#include <string>

#include "data/tokenizer.h"

namespace sl::data {

inline constexpr const char* kBosText = "<|bos|>";

struct HFTokenizer {
  std::string json;     // tokenizer.json; empty when the vocabulary has no exact form
  std::string why_not;  // then: why
};

HFTokenizer hf_tokenizer_json(const Tokenizer& tok);

}  // namespace sl::data
