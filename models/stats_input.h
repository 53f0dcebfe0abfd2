// What the statistics of statistics.cpp are computed from: one forward's captured activations
// and the options, with the per-layer measures that several statistics share computed once.
#pragma once
#include <vector>

#include "models/attention.h"
#include "models/hidden_stats.h"
#include "models/moe.h"
#include "models/moe_stats.h"
#include "models/sink_stats.h"

namespace sl::models {

struct StatsOptions {
  int64_t first_k = 8;           // leading positions tracked
  std::vector<double> eps{0.3};  // sink thresholds
  int64_t sink_tokens = 0;       // positions before the first real token (1 with a sink token)
  bool vit = false;              // a ViT: bidirectional importance over all queries
  int64_t first_patch = 0;       // ViT: the token index of patch 0 (after CLS and registers)
  std::vector<uint8_t> background{};  // ViT: [B, P] 1 = a background patch of the probe (data/patches.h)
};

// ViT: the multiple of the image's median patch norm above which a token is high-norm (Darcet
// et al.'s outliers stand far above it).
inline constexpr float kHighNorm = 2.f;

// Which weights a measure reads: as captured, or the proxy |w| / sum |w| (sink_stats.h).
enum class Weights { Raw, Proxy };

class StatsInput {
 public:
  // attn and hidden per layer (hidden may be empty), moe per layer or empty; they must outlive this.
  StatsInput(const std::vector<AttentionCapture>& attn, const std::vector<Tensor>& hidden,
             const std::vector<MoECapture>& moe, const StatsOptions& opt);

  const StatsOptions& options() const { return opt_; }
  int64_t layers() const { return (int64_t)attn_.size(); }
  int64_t heads() const { return heads_; }
  int64_t sequences() const { return sequences_; }
  int64_t queries() const { return queries_; }  // T: captured positions (with a sink token)
  int64_t first_k() const { return k_; }         // K = min(first_k, T)
  int64_t eps_count() const { return (int64_t)opt_.eps.size(); }
  int64_t slots() const { return slots_; }      // bias-slot columns before the first key
  // Every layer's weights are distributions over keys (AttentionCapture::normalized).
  bool normalized() const { return normalized_; }
  bool has_hidden() const { return !hidden_.empty(); }
  bool has_moe() const { return moe_stats_.layers > 0; }

  const std::vector<AttentionCapture>& attn() const { return attn_; }
  const std::vector<Tensor>& hidden() const { return hidden_; }
  // The layer's weights [B, H, T, S], contiguous; Proxy only when !normalized().
  const Tensor& weights(int64_t layer, Weights w = Weights::Raw) const;
  // alpha[b, h, p] for every position p < T (causal, or over all queries for a ViT).
  const std::vector<float>& importance(int64_t layer, Weights w = Weights::Raw) const;
  // Row sums, maxima and entropies of the raw weights, and the row entropies the entropy statistics
  // read: of the proxy weights for kernels that do not normalise (raw weights of either sign, as an
  // MLP kernel gives, have no entropy), else of the weights.
  const RowSums& row_sums(int64_t layer) const { return layer_[layer].rows; }
  const RowSums& entropy_rows(int64_t layer) const { return normalized_ ? layer_[layer].rows : layer_[layer].proxy_rows; }
  // ||h|| [B, T'] of the residual stream after the layer.
  const std::vector<float>& token_norms(int64_t layer) const { return layer_[layer].token_norms; }
  // ViT: [B, T] 1 where token j of image b (CLS and registers included) is high-norm after the
  // layer: ||h|| above kHighNorm times the image's median patch norm. Empty for a decoder.
  const std::vector<uint8_t>& high_norm(int64_t layer) const { return layer_.at(layer).high_norm; }
  // |h| of the residual stream after the layer, over all its entries.
  const Magnitudes& magnitudes(int64_t layer) const { return layer_[layer].magnitudes; }
  // ||v_j W_O^h|| [B, H, S] (value_output_norms), empty without the values or W_O^h.
  const std::vector<float>& value_output_norms(int64_t layer) const { return layer_[layer].value_output_norms; }
  // What the sink column writes into the output through the raw weights (output_contributions),
  // empty without the value norms.
  const Contributions& contributions(int64_t layer) const { return layer_[layer].contributions; }
  const MoEStats& moe() const { return moe_stats_; }

 private:
  struct Layer {
    Tensor probs, proxy;
    std::vector<float> alpha, proxy_alpha;
    RowSums rows, proxy_rows;
    std::vector<float> token_norms;
    std::vector<uint8_t> high_norm;
    Magnitudes magnitudes{};
    std::vector<float> value_output_norms;
    Contributions contributions;
  };
  const std::vector<AttentionCapture>& attn_;
  const std::vector<Tensor>& hidden_;
  StatsOptions opt_;
  int64_t heads_ = 0, sequences_ = 0, queries_ = 0, k_ = 0, slots_ = 0;
  bool normalized_ = true;
  std::vector<Layer> layer_;
  MoEStats moe_stats_;
};

}  // namespace sl::models
