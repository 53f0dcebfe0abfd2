// A causal intervention on the forward pass, asked for explicitly like a CaptureRequest: the
// forward given an Intervention computes the edited model (no global state, no gradient through
// an edit; `sinklab analyze` compares its loss with the unmodified model's).
//
// The sink key is the first key every query sees: the kv-bias slot where the model has one,
// else position 0 (the sink token where the model has one, else the first token).
//   drop sink attention:  A_i0 = 0, the rest left as is, or rescaled so that the row keeps its
//                         total (a softmax row is renormalised to 1); a row with nothing left stays 0
//   sink value:           v_0 = 0, or v_0 = the mean of the other keys' values
//   zero head:            the head's output o_h = 0 before the output projection
//   massive activations:  after a block, the k largest |h_0c| of each sequence's first position
//                         set to 0, or to their mean over the other positions (Sun et al. 2024)
#pragma once
#include <cstdint>
#include <optional>

#include "engine/tensor.h"

namespace sl::models {

struct AttentionEdit {
  enum class Kind { DropSinkAttention, DropSinkAttentionRescaled, ZeroSinkValue, MeanSinkValue, ZeroHead };
  Kind kind;
  int64_t head = -1;  // -1: every head of the layer
  // The edit needs the weights or values themselves (the composed attention core).
  bool needs_weights() const { return kind != Kind::ZeroHead; }
};

struct HiddenEdit {
  int64_t channels = 1;  // k
  bool to_mean = false;  // else zero
};

struct Intervention {
  int64_t layer = -1;  // the block edited; -1: every block
  std::optional<AttentionEdit> attention;
  std::optional<HiddenEdit> hidden;  // after the block
  bool at(int64_t l) const { return layer < 0 || layer == l; }
};

// The edits on detached tensors. A [B, H, T, S] weights whose column 0 is the sink key;
// v [B, H, S, d_h]; o [B, T, H, d_h]; h [B, T, D].
Tensor drop_sink_attention(const Tensor& A, int64_t head, bool rescale);
Tensor replace_sink_value(const Tensor& v, int64_t head, bool to_mean);
Tensor zero_head(const Tensor& o, int64_t head);
Tensor ablate_massive_activations(const Tensor& h, const HiddenEdit& edit);

}  // namespace sl::models
