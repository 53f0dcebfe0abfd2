#include "models/statistics.h"

#include <algorithm>
#include <numeric>
#include <cmath>
#include <cstdio>

namespace sl::models {

namespace {

using A = Axis;
using W = Weights;
using Values = std::vector<float>;

// ---- Shared reductions over layers, heads and sequences. ----

// mean over sequences of alpha[b, h, p] for p < P: [L, H, P].
Values mean_importance(const StatsInput& in, W w, int64_t P) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences(), T = in.queries();
  Values out(L * H * P, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    const Values& alpha = in.importance(l, w);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t p = 0; p < P; ++p) out[(l * H + h) * P + p] += alpha[(b * H + h) * T + p] / B;
  }
  return out;
}

// Sink_p^eps for p < P: percent of (layer, sequence, head) with alpha_p > eps: [E, P].
Values sink_rates(const StatsInput& in, W w, int64_t P) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences(), T = in.queries(), E = in.eps_count();
  const std::vector<double>& eps = in.options().eps;
  Values out(E * P, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    const Values& alpha = in.importance(l, w);
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t e = 0; e < E; ++e)
          if (alpha[bh * T + p] > eps[e]) out[e * P + p] += 100.f / (L * H * B);
  }
  return out;
}

// Sink_*^eps: percent of (layer, sequence, head) whose weight on the slots (kv-bias columns and
// the sink token), averaged over queries, exceeds eps: [E].
Values slot_sink_rate(const StatsInput& in, W w) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences(), E = in.eps_count();
  Values out(E, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    const std::vector<double> slot = slot_importance(in.weights(l, w), in.slots() + in.options().sink_tokens);
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t e = 0; e < E; ++e)
        if (slot[bh] > in.options().eps[e]) out[e] += 100.f / (L * H * B);
  }
  return out;
}

// A per-(sequence, head) sum over rows of RowSums (the raw weights', or with `entropy` the rows
// the entropies read), as a mean over sequences and rows: [L, H].
Values per_head_mean(const StatsInput& in, std::vector<double> RowSums::*field, bool entropy = false) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences(), T = in.queries();
  Values out(L * H, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    const std::vector<double>& v = (entropy ? in.entropy_rows(l) : in.row_sums(l)).*field;
    for (int64_t bh = 0; bh < B * H; ++bh) out[l * H + bh % H] += (float)(v[bh] / (B * T));
  }
  return out;
}

// Mean over sequences and heads of ||x|| at the first K positions after the slots, for keys or
// values [B, H, S, d_h]: [L, K] (zeros for a layer that kept none).
Values position_norms(const StatsInput& in, Tensor AttentionCapture::*field) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences(), K = in.first_k();
  Values out(L * K, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    const AttentionCapture& a = in.attn()[l];
    if (!(a.*field).defined()) continue;
    const int64_t S = a.slot_offset + K;  // the slots and the first K positions, not every key
    const Values norms = row_norms(leading_block(a.*field, {-1, -1, S}));
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t p = 0; p < K; ++p) out[l * K + p] += norms[bh * S + a.slot_offset + p] / (B * H);
  }
  return out;
}

// Mean over sequences of ||h_t|| after block l, for every position t of the captured stream.
Values mean_token_norms(const StatsInput& in, int64_t l) {
  const Values& norms = in.token_norms(l);
  const int64_t B = in.sequences(), Th = (int64_t)norms.size() / B;
  Values out(Th, 0.f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Th; ++t) out[t] += norms[b * Th + t] / B;
  return out;
}

Values hidden_norms(const StatsInput& in) {
  const int64_t L = in.layers(), K = in.first_k();
  Values out(L * K, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    const Values norms = mean_token_norms(in, l);
    for (int64_t p = 0; p < std::min(K, (int64_t)norms.size()); ++p) out[l * K + p] = norms[p];
  }
  return out;
}

Values massive_ratio(const StatsInput& in) {
  Values out(in.layers());
  for (int64_t l = 0; l < in.layers(); ++l) {
    const Values norms = mean_token_norms(in, l);
    Values sorted = norms;
    const size_t mid = sorted.size() / 2;
    std::nth_element(sorted.begin(), sorted.begin() + mid, sorted.end());
    out[l] = norms[0] / std::max(sorted[mid], 1e-12f);
  }
  return out;
}

Values attn_max(const StatsInput& in) {
  Values out(in.layers());
  for (int64_t l = 0; l < in.layers(); ++l) {
    const std::vector<double>& top = in.row_sums(l).max;
    out[l] = (float)*std::max_element(top.begin(), top.end());
  }
  return out;
}

Values attn_mean(const StatsInput& in) {
  Values out(in.layers());
  for (int64_t l = 0; l < in.layers(); ++l) {
    double total = 0;
    for (double s : in.row_sums(l).row_sum) total += s;
    const Tensor& A = in.weights(l);
    out[l] = (float)(total / ((double)A.size(0) * A.size(1) * A.size(2) * A.size(3)));
  }
  return out;
}

// ViT: the CLS query's (query 0's) weight on token j in layer l, image b, head h.
float cls_weight(const StatsInput& in, int64_t l, int64_t b, int64_t h, int64_t j) {
  const Tensor& A = in.weights(l);
  return A.data()[(b * in.heads() + h) * in.queries() * A.size(3) + in.attn()[l].slot_offset + j];
}

// ViT: the CLS query's weights on every token, mean over images: [L, H, T].
Values cls_attention(const StatsInput& in) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences(), T = in.queries();
  Values out(L * H * T, 0.f);
  for (int64_t l = 0; l < L; ++l)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < T; ++j) out[(l * H + h) * T + j] += cls_weight(in, l, b, h, j) / B;
  return out;
}

Values vit_token_norms(const StatsInput& in) {
  Values out;
  for (int64_t l = 0; l < in.layers(); ++l) {
    const Values norms = mean_token_norms(in, l);
    out.insert(out.end(), norms.begin(), norms.end());
  }
  return out;
}

// Token j of image b is a background patch (data/patches.h); CLS and registers are not.
bool is_background(const StatsInput& in, int64_t b, int64_t j) {
  const int64_t first = in.options().first_patch, P = in.queries() - first;
  return j >= first && in.options().background[b * P + j - first];
}

bool has_background(const StatsInput& in) {
  return in.options().vit && !in.options().background.empty() &&
         (int64_t)in.options().background.size() == in.sequences() * (in.queries() - in.options().first_patch);
}

// ViT: percent of patch tokens that are high-norm: [L].
Values high_norm_rate(const StatsInput& in) {
  const int64_t B = in.sequences(), first = in.options().first_patch, T = in.queries();
  Values out(in.layers(), 0.f);
  for (int64_t l = 0; l < in.layers(); ++l) {
    const std::vector<uint8_t>& high = in.high_norm(l);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = first; j < T; ++j) out[l] += high[b * T + j] * 100.f / (B * (T - first));
  }
  return out;
}

// ViT: percent of images in which token j is high-norm: [L, T].
Values high_norm_tokens(const StatsInput& in) {
  const int64_t B = in.sequences(), T = in.queries();
  Values out(in.layers() * T, 0.f);
  for (int64_t l = 0; l < in.layers(); ++l) {
    const std::vector<uint8_t>& high = in.high_norm(l);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < T; ++j) out[l * T + j] += high[b * T + j] * 100.f / B;
  }
  return out;
}

// ViT: percent of the high-norm patches that are background, 0 where there are none: [L].
Values high_norm_background(const StatsInput& in) {
  const int64_t B = in.sequences(), first = in.options().first_patch, T = in.queries();
  Values out(in.layers(), 0.f);
  for (int64_t l = 0; l < in.layers(); ++l) {
    const std::vector<uint8_t>& high = in.high_norm(l);
    double n = 0, background = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = first; j < T; ++j)
        if (high[b * T + j]) n += 1, background += is_background(in, b, j);
    out[l] = n > 0 ? (float)(100 * background / n) : 0.f;
  }
  return out;
}

// ViT: what the high-norm patches attend to: their attention rows, mean over heads, images and
// the high-norm patch queries (zeros where there are none): [L, T].
Values high_norm_attention(const StatsInput& in) {
  const int64_t B = in.sequences(), H = in.heads(), first = in.options().first_patch, T = in.queries();
  Values out(in.layers() * T, 0.f);
  for (int64_t l = 0; l < in.layers(); ++l) {
    const std::vector<uint8_t>& high = in.high_norm(l);
    const Tensor& A = in.weights(l);
    const int64_t S = A.size(3), slots = in.attn()[l].slot_offset;
    double n = 0;
    std::vector<double> row(T, 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = first; t < T; ++t) {
        if (!high[b * T + t]) continue;
        n += H;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t j = 0; j < T; ++j) row[j] += A.data()[((b * H + h) * T + t) * S + slots + j];
      }
    for (int64_t j = 0; j < T; ++j) out[l * T + j] = n > 0 ? (float)(row[j] / n) : 0.f;
  }
  return out;
}

// ViT: percent of the probe's patches that are background: [].
Values background_share(const StatsInput& in) {
  const std::vector<uint8_t>& bg = in.options().background;
  return {(float)(100.0 * std::count(bg.begin(), bg.end(), 1) / bg.size())};
}

// ViT: of the (layer, head, image, patch) whose importance exceeds eps, the percent whose patch
// is background, 0 where there are none: [E].
Values sink_background(const StatsInput& in) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences(), T = in.queries(), E = in.eps_count();
  const int64_t first = in.options().first_patch;
  std::vector<double> n(E, 0), background(E, 0);
  for (int64_t l = 0; l < L; ++l) {
    const Values& alpha = in.importance(l);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = first; j < T; ++j)
          for (int64_t e = 0; e < E; ++e)
            if (alpha[(b * H + h) * T + j] > in.options().eps[e]) n[e] += 1, background[e] += is_background(in, b, j);
  }
  Values out(E);
  for (int64_t e = 0; e < E; ++e) out[e] = n[e] > 0 ? (float)(100 * background[e] / n[e]) : 0.f;
  return out;
}

// ViT, per image for pictures: [L, B, T] of a per-(image, head, token) measure m(l, b, h, j),
// mean over heads.
template <class M>
Values per_image(const StatsInput& in, M m) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences(), T = in.queries();
  Values out(L * B * T, 0.f);
  for (int64_t l = 0; l < L; ++l)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < T; ++j) out[(l * B + b) * T + j] += m(l, b, h, j) / H;
  return out;
}

Values image_importance(const StatsInput& in) {
  const int64_t H = in.heads(), T = in.queries();
  return per_image(in, [&](int64_t l, int64_t b, int64_t h, int64_t j) { return in.importance(l)[(b * H + h) * T + j]; });
}

Values image_cls_attention(const StatsInput& in) {
  return per_image(in, [&](int64_t l, int64_t b, int64_t h, int64_t j) { return cls_weight(in, l, b, h, j); });
}

Values image_token_norm(const StatsInput& in) {  // token_norms is already [B, T] per layer
  Values out;
  for (int64_t l = 0; l < in.layers(); ++l) out.insert(out.end(), in.token_norms(l).begin(), in.token_norms(l).end());
  return out;
}

// ---- What the sink does, and the residual stream's geometry. ----

// The mean over sequences of a per-(sequence, head) measure of each layer, m(l) [B * H]: [L, H].
template <class M>
Values head_means(const StatsInput& in, M m) {
  const int64_t L = in.layers(), H = in.heads(), B = in.sequences();
  Values out(L * H);
  for (int64_t l = 0; l < L; ++l) {
    const std::vector<double> v = m(l);
    for (int64_t h = 0; h < H; ++h) {
      double sum = 0;
      for (int64_t b = 0; b < B; ++b) sum += v[b * H + h];
      out[l * H + h] = (float)(sum / B);
    }
  }
  return out;
}

// The mean over sequences of a per-sequence measure of each layer's tokens [B, T, D]: [L].
Values layer_means(const StatsInput& in, std::vector<double> (*measure)(const Tensor&),
                   Tensor AttentionCapture::*field) {
  Values out(in.layers());
  for (int64_t l = 0; l < in.layers(); ++l) {
    const std::vector<double> v = measure(field ? in.attn()[l].*field : in.hidden()[l]);
    double sum = 0;
    for (double x : v) sum += x;
    out[l] = (float)(sum / v.size());
  }
  return out;
}
Values hidden_means(const StatsInput& in, std::vector<double> (*measure)(const Tensor&)) {
  return layer_means(in, measure, nullptr);
}
Values output_means(const StatsInput& in, std::vector<double> (*measure)(const Tensor&)) {
  return layer_means(in, measure, &AttentionCapture::output);
}

Values diag_mass(const StatsInput& in, W w) {
  return head_means(in, [&](int64_t l) { return diagonal_mass(in.weights(l, w), in.attn()[l].slot_offset); });
}

// The sink is position 0 (the sink token, if any), the first column after the bias slots.
Values contribution(const StatsInput& in, std::vector<double> Contributions::*field) {
  return head_means(in, [&](int64_t l) { return in.contributions(l).*field; });
}

Values centred_sink_logit(const StatsInput& in) {
  return head_means(in, [&](int64_t l) {
    const AttentionCapture& a = in.attn()[l];
    return centred_logit(a.queries, a.keys, a.mask, a.slot_offset);
  });
}

Values row_entropy_over_log_keys(const StatsInput& in) {
  return head_means(in, [&](int64_t l) {
    return normalized_entropy(in.entropy_rows(l), in.attn()[l].mask, in.weights(l).size(2));
  });
}

Values top_magnitudes(const StatsInput& in) {
  Values out;
  for (int64_t l = 0; l < in.layers(); ++l) {
    const std::array<float, 3>& top = in.magnitudes(l).top;
    out.insert(out.end(), top.begin(), top.end());
  }
  return out;
}

Values median_magnitude(const StatsInput& in) {
  Values out(in.layers());
  for (int64_t l = 0; l < in.layers(); ++l) out[l] = in.magnitudes(l).median;
  return out;
}

Values massive_activation_ratio(const StatsInput& in) {
  Values out(in.layers());
  for (int64_t l = 0; l < in.layers(); ++l) {
    const Magnitudes& m = in.magnitudes(l);
    out[l] = m.top[0] / std::max(m.median, 1e-12f);
  }
  return out;
}

// ---- When a statistic applies. ----

bool has_slots(const StatsInput& in) { return in.slots() > 0; }
bool has_slot_or_sink_token(const StatsInput& in) { return in.slots() + in.options().sink_tokens > 0; }
bool unnormalized(const StatsInput& in) { return !in.normalized(); }
bool unnormalized_with_slot(const StatsInput& in) { return !in.normalized() && has_slot_or_sink_token(in); }
bool has_hidden(const StatsInput& in) { return in.has_hidden(); }
bool is_vit(const StatsInput& in) { return in.options().vit; }
bool has_moe(const StatsInput& in) { return in.has_moe(); }
// Every layer captured what the statistic reads (hand-made captures may not).
bool every_layer(const StatsInput& in, bool (*has)(const AttentionCapture&)) {
  return std::all_of(in.attn().begin(), in.attn().end(), has);
}
bool has_mask(const StatsInput& in) {
  return every_layer(in, [](const AttentionCapture& a) { return !a.mask.empty(); });
}
bool has_queries(const StatsInput& in) {
  return every_layer(in, [](const AttentionCapture& a) {
    return a.queries.defined() && a.keys.defined() && !a.mask.empty();
  });
}
bool has_value_outputs(const StatsInput& in) {
  return every_layer(in, [](const AttentionCapture& a) { return a.values.defined() && a.out_proj.defined(); });
}
bool has_output(const StatsInput& in) {
  return every_layer(in, [](const AttentionCapture& a) { return a.output.defined(); });
}

// ---- Summary reductions of logged rows. ----

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

double scalar(const float* row, const Shape&, const SummaryContext&) { return row[0]; }
// Sink rates [E, K]: the first real token's, for the column's threshold.
double first_token_rate(const float* row, const Shape& shape, const SummaryContext& c) {
  if (c.eps_index >= shape.at(0) || c.first_token >= shape.at(1)) return NAN;
  return row[c.eps_index * shape[1] + c.first_token];
}
// alpha [L, H, K]: the first real token's, mean over layers and heads.
double first_token_alpha(const float* row, const Shape& shape, const SummaryContext& c) {
  const int64_t K = shape.at(2), n = shape.at(0) * shape.at(1);
  if (c.first_token >= K || n == 0) return NAN;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += row[i * K + c.first_token];
  return sum / n;
}
// value_norm [L, K]: ||v|| of the first real token, summed over layers, over the sum over layers
// of the mean ||v|| of the positions after it (small at a sink).
double first_value_ratio(const float* row, const Shape& shape, const SummaryContext& c) {
  const int64_t K = shape.at(1), f = c.first_token;
  if (K - f < 2) return NAN;
  double first = 0, rest = 0;
  for (int64_t l = 0; l < shape.at(0); ++l) {
    double after = 0;
    for (int64_t p = f + 1; p < K; ++p) after += row[l * K + p];
    first += row[l * K + f];
    rest += after / (K - f - 1);
  }
  return first / rest;
}
double mean_of(const float* row, const Shape& shape, const SummaryContext&) {
  const int64_t n = numel(shape);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += row[i];
  return n ? sum / n : NAN;
}
double max_of(const float* row, const Shape& shape, const SummaryContext&) {
  const int64_t n = numel(shape);
  return n ? *std::max_element(row, row + n) : NAN;
}
double eps_entry(const float* row, const Shape& shape, const SummaryContext& c) {
  return c.eps_index < shape.at(0) ? row[c.eps_index] : NAN;
}

// Of vit/sink_rate [E, T] at the context's threshold: the largest over tokens lo .. hi - 1.
double sink_rate_max(const float* row, const Shape& shape, const SummaryContext& c, int64_t lo, int64_t hi) {
  if (c.eps_index >= shape.at(0) || lo >= hi) return NAN;
  const float* r = row + c.eps_index * shape.at(1);
  return *std::max_element(r + lo, r + hi);
}
double vit_sink_cls(const float* row, const Shape& shape, const SummaryContext& c) {
  return sink_rate_max(row, shape, c, 0, 1);
}
double vit_sink_reg(const float* row, const Shape& shape, const SummaryContext& c) {
  return sink_rate_max(row, shape, c, 1, c.first_patch);
}
double vit_sink_patch(const float* row, const Shape& shape, const SummaryContext& c) {
  return sink_rate_max(row, shape, c, c.first_patch, shape.at(1));
}

// Of vit/high_norm_tokens [L, T]: the largest over layers and tokens lo .. hi - 1.
double largest_over_layers(const float* row, const Shape& shape, int64_t lo, int64_t hi) {
  if (lo >= hi) return NAN;
  double out = 0;
  for (int64_t l = 0; l < shape.at(0); ++l)
    out = std::max(out, (double)*std::max_element(row + l * shape.at(1) + lo, row + l * shape.at(1) + hi));
  return out;
}
double high_norm_cls(const float* row, const Shape& shape, const SummaryContext&) {
  return largest_over_layers(row, shape, 0, 1);
}
double high_norm_reg(const float* row, const Shape& shape, const SummaryContext& c) {
  return largest_over_layers(row, shape, 1, c.first_patch);
}

// Of vit/high_norm_attention [L, T]: the attention the high-norm patches pay to tokens lo .. hi - 1,
// mean over the layers that have high-norm patches (a row of zeros has none; NaN where no layer has).
double high_norm_attention_on(const float* row, const Shape& shape, int64_t lo, int64_t hi) {
  if (lo >= hi) return NAN;
  const int64_t T = shape.at(1);
  double sum = 0;
  int64_t layers = 0;
  for (int64_t l = 0; l < shape.at(0); ++l) {
    const float* r = row + l * T;
    if (std::all_of(r, r + T, [](float v) { return v == 0.f; })) continue;
    sum += std::accumulate(r + lo, r + hi, 0.0), ++layers;
  }
  return layers ? sum / layers : NAN;
}
double high_norm_to_cls(const float* row, const Shape& shape, const SummaryContext&) {
  return high_norm_attention_on(row, shape, 0, 1);
}
double high_norm_to_reg(const float* row, const Shape& shape, const SummaryContext& c) {
  return high_norm_attention_on(row, shape, 1, c.first_patch);
}

// An MoE routing statistic: one field of models/moe_stats.h.
Statistic moe(std::string name, std::vector<Axis> shape, std::string unit, std::string doc, Values MoEStats::*field,
              std::vector<SummaryColumn> summary = {}) {
  return {.name = std::move(name), .shape = std::move(shape), .unit = std::move(unit), .doc = std::move(doc),
          .compute = [field](const StatsInput& in) { return in.moe().*field; }, .logged = has_moe,
          .summary = std::move(summary)};
}

// Of a [blocks, experts] row: the largest share an expert takes, mean over the blocks with any
// assignment (1 / E when balanced, 1 when one expert takes it all).
double top_share(const float* row, const Shape& shape, const SummaryContext&) {
  const int64_t M = shape.at(0), E = shape.at(1);
  double sum = 0;
  int64_t rows = 0;  // blocks with any assignment (a block may have no sink tokens)
  for (int64_t m = 0; m < M; ++m) {
    const float* r = row + m * E;
    const double total = std::accumulate(r, r + E, 0.0);
    if (total > 0) sum += *std::max_element(r, r + E) / total, ++rows;
  }
  return rows ? sum / rows : NAN;
}

std::vector<Statistic> declare() {
  const char* proxy = " on the proxy weights |w| / sum |w| (kernels whose rows are not distributions)";
  return {
      // ---- Logged by the trainer and the tasks. ----
      {.name = "train/loss", .unit = "nats/token", .doc = "training loss of the step (with the MoE router losses)",
       .summary = {{"train_loss", "%.4g", "training loss at the last step", scalar}}},
      {.name = "train/lr", .unit = "1", .doc = "learning rate of the step"},
      {.name = "train/grad_norm", .unit = "L2 norm", .doc = "gradient norm before clipping"},
      {.name = "train/tokens_per_s", .unit = "tokens/s", .doc = "training throughput since the last log line"},
      {.name = "val/loss", .unit = "nats/token", .doc = "validation cross-entropy",
       .summary = {{"val_loss", "%.4g", "validation loss at the last evaluation", scalar}}},
      {.name = "val/accuracy", .unit = "fraction", .doc = "ViT: test-set accuracy",
       .summary = {{"test_acc", "%.4f", "ViT: test-set accuracy at the last evaluation", scalar}}},
      {.name = "maps/layer{layer}_head{head}", .shape = {A::Sequences, A::Queries, A::Keys}, .unit = "weight",
       .doc = "full attention weights of one layer and head of the probe (stats.maps, replay --save-maps)"},
      {.name = "vit/probe_images", .shape = {A::Sequences, A::Rows, A::Cols}, .unit = "pixel",
       .doc = "ViT: the probe images, logged once"},

      // ---- Attention sinks (models/sink_stats.h), from the captured weights. ----
      {.name = "attn/sink_rate", .shape = {A::Eps}, .unit = "percent",
       .doc = "Sink_1^eps: share of (layer, head, sequence) whose alpha at position 0 exceeds eps (summaries "
              "read attn/sink_rate_k at the first real token, after a sink token)",
       .compute = [](const StatsInput& in) { return sink_rates(in, W::Raw, 1); }},
      {.name = "attn/sink_rate_k", .shape = {A::Eps, A::FirstK}, .unit = "percent",
       .doc = "Sink_p^eps for each of the first K positions",
       .compute = [](const StatsInput& in) { return sink_rates(in, W::Raw, in.first_k()); },
       .summary = {{"sink@{eps}", "%.1f", "Sink_1^eps of the first real token at the last logged step",
                    first_token_rate},
                   {"sink@{eps}_max", "%.1f", "its largest value over the logged steps", first_token_rate,
                    SummaryColumn::Over::Max}}},
      {.name = "attn/alpha", .shape = {A::Layers, A::Heads, A::FirstK}, .unit = "weight",
       .doc = "importance alpha_p: mean attention position p receives from the queries that see it",
       .compute = [](const StatsInput& in) { return mean_importance(in, W::Raw, in.first_k()); },
       .summary = {{"alpha1", "%.3f", "alpha of the first real token, mean over layers and heads",
                    first_token_alpha}}},
      {.name = "attn/proxy_sink_rate", .shape = {A::Eps}, .unit = "percent", .doc = std::string("Sink_1^eps") + proxy,
       .compute = [](const StatsInput& in) { return sink_rates(in, W::Proxy, 1); },
       .logged = unnormalized, .supersedes = "attn/sink_rate"},
      {.name = "attn/proxy_sink_rate_k", .shape = {A::Eps, A::FirstK}, .unit = "percent",
       .doc = std::string("Sink_p^eps") + proxy,
       .compute = [](const StatsInput& in) { return sink_rates(in, W::Proxy, in.first_k()); },
       .logged = unnormalized, .supersedes = "attn/sink_rate_k"},
      {.name = "attn/proxy_alpha", .shape = {A::Layers, A::Heads, A::FirstK}, .unit = "weight",
       .doc = std::string("alpha_p") + proxy,
       .compute = [](const StatsInput& in) { return mean_importance(in, W::Proxy, in.first_k()); },
       .logged = unnormalized, .supersedes = "attn/alpha"},
      {.name = "attn/diag_mass", .shape = {A::Layers, A::Heads}, .unit = "weight",
       .doc = "diagonal mass (1/T) sum_t A_tt: the weight of each query on itself, mean over sequences (the "
              "diagonal pattern beside the sink's alpha)",
       .compute = [](const StatsInput& in) { return diag_mass(in, W::Raw); }},
      {.name = "attn/proxy_diag_mass", .shape = {A::Layers, A::Heads}, .unit = "weight",
       .doc = std::string("diagonal mass") + proxy,
       .compute = [](const StatsInput& in) { return diag_mass(in, W::Proxy); }, .logged = unnormalized,
       .supersedes = "attn/diag_mass"},
      {.name = "attn/entropy", .shape = {A::Layers, A::Heads}, .unit = "nats",
       .doc = "entropy of each query's weights divided by their sum (the proxy |w| / sum |w| for kernels that "
              "do not normalise), mean over queries and sequences",
       .compute = [](const StatsInput& in) { return per_head_mean(in, &RowSums::entropy, true); }},
      {.name = "attn/normalized_entropy", .shape = {A::Layers, A::Heads}, .unit = "fraction",
       .doc = "a query's entropy (as attn/entropy) over log of its number of visible keys (bias slots "
              "included): 0 on one key, 1 uniform; mean over the queries that see two keys or more and give them "
              "some weight, and sequences",
       .compute = row_entropy_over_log_keys, .logged = has_mask},
      {.name = "attn/max", .shape = {A::Layers}, .unit = "weight", .doc = "largest attention weight",
       .compute = attn_max},
      {.name = "attn/mean", .shape = {A::Layers}, .unit = "weight", .doc = "mean attention weight over all cells",
       .compute = attn_mean},
      {.name = "attn/row_sum", .shape = {A::Layers, A::Heads}, .unit = "weight",
       .doc = "mean sum of a query's weights (1 for normalised kernels)",
       .compute = [](const StatsInput& in) { return per_head_mean(in, &RowSums::row_sum); }},
      {.name = "attn/key_norm", .shape = {A::Layers, A::FirstK}, .unit = "L2 norm",
       .doc = "||k_p|| of the first K positions, mean over sequences and heads",
       .compute = [](const StatsInput& in) { return position_norms(in, &AttentionCapture::keys); }},
      {.name = "attn/value_norm", .shape = {A::Layers, A::FirstK}, .unit = "L2 norm",
       .doc = "||v_p|| of the first K positions, mean over sequences and heads",
       .compute = [](const StatsInput& in) { return position_norms(in, &AttentionCapture::values); },
       .summary = {{"v0_ratio", "%.2f", "||v|| of the first real token over the mean ||v|| of the next positions",
                    first_value_ratio}}},
      {.name = "attn/slot_alpha", .shape = {A::Layers, A::Heads}, .unit = "weight",
       .doc = "attention on the kv-bias slot, mean over queries and sequences",
       .compute = [](const StatsInput& in) { return per_head_mean(in, &RowSums::slot); }, .logged = has_slots,
       .summary = {{"slot_alpha", "%.3f", "attention on the kv-bias slot, mean over layers and heads", mean_of}}},
      {.name = "attn/slot_sink_rate", .shape = {A::Eps}, .unit = "percent",
       .doc = "Sink_*^eps: share of (layer, head, sequence) whose slot (kv-bias key and sink token) importance "
              "exceeds eps",
       .compute = [](const StatsInput& in) { return slot_sink_rate(in, W::Raw); }, .logged = has_slot_or_sink_token,
       .summary = {{"slot_sink@{eps}", "%.1f", "Sink_*^eps of the slot at the last logged step", eps_entry}}},
      {.name = "attn/proxy_slot_sink_rate", .shape = {A::Eps}, .unit = "percent",
       .doc = std::string("Sink_*^eps") + proxy,
       .compute = [](const StatsInput& in) { return slot_sink_rate(in, W::Proxy); },
       .logged = unnormalized_with_slot, .supersedes = "attn/slot_sink_rate"},

      // ---- What the sink writes (Kobayashi et al. 2020; sink = position 0, the sink token if any). ----
      {.name = "attn/sink_contribution", .shape = {A::Layers, A::Heads}, .unit = "L2 norm",
       .doc = "||A_t0 v_0 W_O^h||: the norm of what position 0 (the sink token, if any) adds to query t's output "
              "through head h (before an output gate), mean over queries and sequences",
       .compute = [](const StatsInput& in) { return contribution(in, &Contributions::sink); },
       .logged = has_value_outputs},
      {.name = "attn/total_contribution", .shape = {A::Layers, A::Heads}, .unit = "L2 norm",
       .doc = "sum_j ||A_tj v_j W_O^h|| over every key column (bias slots included), mean over queries and "
              "sequences",
       .compute = [](const StatsInput& in) { return contribution(in, &Contributions::total); },
       .logged = has_value_outputs},
      {.name = "attn/sink_contribution_share", .shape = {A::Layers, A::Heads}, .unit = "fraction",
       .doc = "||A_t0 v_0 W_O^h|| / sum_j ||A_tj v_j W_O^h|| per query (0 where nothing is written), mean over "
              "queries and sequences: a sink that carries no value has a high alpha and a small share",
       .compute = [](const StatsInput& in) { return contribution(in, &Contributions::share); },
       .logged = has_value_outputs},
      {.name = "attn/centred_sink_logit", .shape = {A::Layers, A::Heads}, .unit = "logit",
       .doc = "q_t.k_0 / sqrt(d_h) - the mean of q_t.k_j / sqrt(d_h) over the keys j that query t sees (bias "
              "slots included): the scaled score of position 0 above the row's mean, before ALiBi or relative "
              "biases; mean over queries t >= 1 that see position 0, and sequences",
       .compute = centred_sink_logit, .logged = has_queries},
      {.name = "attn/output_kurtosis", .shape = {A::Layers}, .unit = "1",
       .doc = "quantisation outliers of the attention's output (before the residual add): the kurtosis m4 / m2^2 "
              "of a token's channels (3 for Gaussian channels), mean over tokens and sequences",
       .compute = [](const StatsInput& in) { return output_means(in, token_kurtosis); }, .logged = has_output},
      {.name = "attn/output_inf_norm", .shape = {A::Layers}, .unit = "magnitude",
       .doc = "||x||_inf of the attention's output: the largest |x| over a sequence's tokens and channels, mean "
              "over sequences",
       .compute = [](const StatsInput& in) { return output_means(in, inf_norm); }, .logged = has_output},

      // ---- The residual stream. ----
      {.name = "hidden/norm", .shape = {A::Layers, A::FirstK}, .unit = "L2 norm",
       .doc = "||h_p|| after each block at the first K positions, mean over sequences",
       .compute = hidden_norms, .logged = has_hidden},
      {.name = "hidden/massive_ratio", .shape = {A::Layers}, .unit = "ratio",
       .doc = "massive activations: ||h_0|| / median_t ||h_t|| after each block",
       .compute = massive_ratio, .logged = has_hidden,
       .summary = {{"massive_ratio", "%.2f", "the largest over layers of ||h_0|| / median ||h_t||", max_of}}},
      {.name = "hidden/cosine", .shape = {A::Layers}, .unit = "cosine",
       .doc = "over-smoothing: the mean over pairs of tokens of cos(h_i, h_j) after each block, mean over "
              "sequences (1 when every token points the same way)",
       .compute = [](const StatsInput& in) { return hidden_means(in, mean_pairwise_cosine); }, .logged = has_hidden},
      {.name = "hidden/rank_residual", .shape = {A::Layers}, .unit = "ratio",
       .doc = "rank collapse: ||H - 1 hbar^T||_F / ||H||_F of a sequence's tokens after each block (0 when every "
              "token is the same), mean over sequences",
       .compute = [](const StatsInput& in) { return hidden_means(in, rank_residual); }, .logged = has_hidden},
      {.name = "hidden/top_magnitudes", .shape = {A::Layers, A::Top}, .unit = "magnitude",
       .doc = "massive activations (Sun et al. 2024): the three largest |h| over every token and channel after "
              "each block",
       .compute = top_magnitudes, .logged = has_hidden},
      {.name = "hidden/median_magnitude", .shape = {A::Layers}, .unit = "magnitude",
       .doc = "the median |h| over every token and channel after each block",
       .compute = median_magnitude, .logged = has_hidden},
      {.name = "hidden/massive_activation_ratio", .shape = {A::Layers}, .unit = "ratio",
       .doc = "the largest |h| over the median |h| after each block (Sun et al. call activations massive at "
              "about 1000 times the median)",
       .compute = massive_activation_ratio, .logged = has_hidden},
      {.name = "hidden/kurtosis", .shape = {A::Layers}, .unit = "1",
       .doc = "quantisation outliers: the kurtosis m4 / m2^2 of a token's channels after each block (3 for "
              "Gaussian channels), mean over tokens and sequences",
       .compute = [](const StatsInput& in) { return hidden_means(in, token_kurtosis); }, .logged = has_hidden},
      {.name = "hidden/inf_norm", .shape = {A::Layers}, .unit = "magnitude",
       .doc = "||h||_inf: the largest |h| over a sequence's tokens and channels after each block, mean over "
              "sequences",
       .compute = [](const StatsInput& in) { return hidden_means(in, inf_norm); }, .logged = has_hidden},

      // ---- ViT: bidirectional attention, so importance averages over every query. ----
      {.name = "vit/alpha", .shape = {A::Layers, A::Heads, A::Tokens}, .unit = "weight",
       .doc = "importance of every token (CLS, registers, patches), mean over images",
       .compute = [](const StatsInput& in) { return mean_importance(in, W::Raw, in.queries()); }, .logged = is_vit},
      {.name = "vit/sink_rate", .shape = {A::Eps, A::Tokens}, .unit = "percent",
       .doc = "share of (layer, head, image) in which the token's importance exceeds eps",
       .compute = [](const StatsInput& in) { return sink_rates(in, W::Raw, in.queries()); }, .logged = is_vit,
       .summary = {{"sink_cls@{eps}", "%.1f", "ViT: the CLS token's vit/sink_rate", vit_sink_cls},
                   {"sink_reg@{eps}", "%.1f", "ViT: the largest vit/sink_rate of a register (none without)", vit_sink_reg},
                   {"sink_patch@{eps}", "%.1f", "ViT: the largest vit/sink_rate of a patch", vit_sink_patch}}},
      {.name = "vit/cls_attention", .shape = {A::Layers, A::Heads, A::Tokens}, .unit = "weight",
       .doc = "attention of the CLS query on every token, mean over images", .compute = cls_attention,
       .logged = is_vit},
      {.name = "vit/token_norm", .shape = {A::Layers, A::Tokens}, .unit = "L2 norm",
       .doc = "||h_j|| after each block, mean over images", .compute = vit_token_norms, .logged = is_vit},
      {.name = "vit/high_norm_rate", .shape = {A::Layers}, .unit = "percent",
       .doc = "patch tokens with ||h|| above twice the image's median patch norm (high-norm tokens)",
       .compute = high_norm_rate, .logged = is_vit,
       .summary = {{"high_norm", "%.1f", "ViT: the largest over layers of vit/high_norm_rate", max_of}}},
      {.name = "vit/high_norm_tokens", .shape = {A::Layers, A::Tokens}, .unit = "percent",
       .doc = "images in which the token (CLS, register or patch) has ||h|| above twice the image's median patch "
              "norm: where the high-norm tokens sit",
       .compute = high_norm_tokens, .logged = is_vit,
       .summary = {{"high_norm_cls", "%.1f", "ViT: the largest over layers of the CLS token's vit/high_norm_tokens",
                    high_norm_cls},
                   {"high_norm_reg", "%.1f", "ViT: the largest over layers and registers of vit/high_norm_tokens "
                    "(none without registers)", high_norm_reg}}},
      {.name = "vit/high_norm_attention", .shape = {A::Layers, A::Tokens}, .unit = "weight",
       .doc = "what the high-norm patches attend to: their attention rows, mean over heads, images and high-norm "
              "patch queries (0 where there are none)",
       .compute = high_norm_attention, .logged = is_vit,
       .summary = {{"high_norm_to_cls", "%.3f", "ViT: the attention the high-norm patches pay to CLS, mean over the "
                    "layers that have any (none without high-norm patches)", high_norm_to_cls},
                   {"high_norm_to_reg", "%.3f", "ViT: the attention the high-norm patches pay to the registers "
                    "together, mean over the layers that have any", high_norm_to_reg}}},
      {.name = "vit/background_patches", .unit = "percent",
       .doc = "probe patches whose pixels' standard deviation is at most stats.background_std (background)",
       .compute = background_share, .logged = has_background,
       .summary = {{"bg_patches", "%.1f", "ViT: percent of the probe's patches that are background", scalar}}},
      {.name = "vit/sink_background", .shape = {A::Eps}, .unit = "percent",
       .doc = "of the (layer, head, image, patch) whose importance exceeds eps, those whose patch is background "
              "(0 where there are none; compare vit/background_patches)",
       .compute = sink_background, .logged = has_background,
       .summary = {{"sink_bg@{eps}", "%.1f", "ViT: percent of the sink patches that are background", eps_entry}}},
      {.name = "vit/high_norm_background", .shape = {A::Layers}, .unit = "percent",
       .doc = "of the high-norm patches, those that are background (0 where there are none)",
       .compute = high_norm_background, .logged = has_background,
       .summary = {{"high_norm_bg", "%.1f", "ViT: the largest over layers of vit/high_norm_background (a layer "
                    "without high-norm patches reads 0)", max_of}}},
      {.name = "vit/image_importance", .shape = {A::Layers, A::Sequences, A::Tokens}, .unit = "weight",
       .doc = "per probe image (for pictures): the attention every token receives, mean over queries and heads",
       .compute = image_importance, .logged = is_vit},
      {.name = "vit/image_cls_attention", .shape = {A::Layers, A::Sequences, A::Tokens}, .unit = "weight",
       .doc = "per probe image: the CLS query's attention on every token, mean over heads",
       .compute = image_cls_attention, .logged = is_vit},
      {.name = "vit/image_token_norm", .shape = {A::Layers, A::Sequences, A::Tokens}, .unit = "L2 norm",
       .doc = "per probe image: ||h_j|| after each block", .compute = image_token_norm, .logged = is_vit},

      // ---- MoE routing (models/moe_stats.h); sink tokens at the first stats.eps. ----
      moe("moe/block", {A::MoEBlocks}, "index", "block index of each MoE layer", &MoEStats::block),
      moe("moe/tokens_per_expert", {A::MoEBlocks, A::Experts}, "count",
          "assignments each expert processed (after the capacity)", &MoEStats::tokens_per_expert,
          {{"load_top", "%.3f", "the busiest expert's share of the assignments, mean over MoE blocks", top_share}}),
      moe("moe/dropped", {A::MoEBlocks}, "percent", "assignments dropped by the capacity", &MoEStats::dropped),
      moe("moe/router_entropy", {A::MoEBlocks}, "nats",
          "entropy of the router scores, mean over tokens (log E = uniform)", &MoEStats::router_entropy,
          {{"router_H", "%.3f", "router entropy over all tokens, mean over MoE blocks", mean_of}}),
      moe("moe/router_entropy_first", {A::MoEBlocks}, "nats",
          "entropy of the router scores at the first token, mean over sequences", &MoEStats::router_entropy_first,
          {{"router_H_first", "%.3f", "router entropy at the first token, mean over MoE blocks", mean_of}}),
      moe("moe/first_token_experts", {A::MoEBlocks, A::Experts}, "fraction",
          "share of the first tokens' assignments per expert", &MoEStats::first_token_experts,
          {{"first_top", "%.3f", "the share of the first tokens' assignments its most used expert takes, mean over "
            "MoE blocks (1 / top_k when every first token goes to it)", top_share}}),
      moe("moe/first_expert_rest_share", {A::MoEBlocks}, "fraction",
          "share of the other tokens' assignments that go to the expert the first tokens use most (1 / experts "
          "when it serves them like any other; near 0 when it specialises in the first token)",
          &MoEStats::first_expert_rest_share,
          {{"first_expert_rest", "%.3f", "first_expert_rest_share, mean over MoE blocks", mean_of}}),
      moe("moe/sink_token_experts", {A::MoEBlocks, A::Experts}, "fraction",
          "share of the sink tokens' assignments per expert (0 if none)", &MoEStats::sink_token_experts,
          {{"sink_top", "%.3f", "the share of the sink tokens' assignments (raw weights, the first stats.eps) its "
            "most used expert takes, mean over MoE blocks with sink tokens", top_share}}),
      moe("moe/sink_tokens", {A::MoEBlocks}, "percent", "tokens whose importance exceeds eps in some head",
          &MoEStats::sink_tokens),
      moe("moe/expert_norm_max", {A::MoEBlocks, A::Experts}, "L2 norm", "largest ||FFN_e(x)|| (massive activations)",
          &MoEStats::expert_norm_max),
      moe("moe/aux_loss", {A::MoEBlocks}, "1", "load-balancing loss, unweighted", &MoEStats::aux_loss),
      moe("moe/z_loss", {A::MoEBlocks}, "1", "router z-loss, unweighted", &MoEStats::z_loss),
  };
}

}  // namespace

const char* axis_name(Axis a) {
  static const char* const names[] = {"layers",    "heads",     "first_k", "eps",  "tokens", "moe_blocks", "experts",
                                      "sequences", "queries",   "keys",    "rows", "cols",   "top"};
  return names[(int)a];
}

const char* axis_doc(Axis a) {
  static const char* const docs[] = {
      "transformer blocks",
      "attention heads",
      "the first K = min(stats.first_k, T) captured positions (position 0 is the sink token, if any)",
      "the thresholds of stats.eps",
      "ViT tokens: CLS, registers, patches",
      "MoE blocks",
      "experts of an MoE block",
      "probe sequences (images)",
      "query positions",
      "key columns: kv-bias slots, then positions",
      "image rows",
      "image columns",
      "the three largest, largest first",
  };
  return docs[(int)a];
}

const std::vector<Statistic>& statistics() {
  static const std::vector<Statistic> all = declare();
  return all;
}

const Statistic* find_statistic(const std::string& name) {
  const std::string prefix = "train_batch/";
  const std::string bare = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
  for (const Statistic& s : statistics())
    if (s.name == bare) return &s;
  return nullptr;
}

Shape row_shape(const Statistic& s, const StatsInput& in) {
  Shape shape;
  for (Axis a : s.shape) {
    switch (a) {
      case Axis::Layers: shape.push_back(in.layers()); break;
      case Axis::Heads: shape.push_back(in.heads()); break;
      case Axis::FirstK: shape.push_back(in.first_k()); break;
      case Axis::Eps: shape.push_back(in.eps_count()); break;
      case Axis::Tokens: shape.push_back(in.queries()); break;
      case Axis::MoEBlocks: shape.push_back(in.moe().layers); break;
      case Axis::Experts: shape.push_back(in.moe().experts); break;
      case Axis::Top: shape.push_back(3); break;
      case Axis::Sequences: shape.push_back(in.sequences()); break;
      default: throw Error("statistic " + s.name + ": axis " + axis_name(a) + " is not one of a capture's");
    }
  }
  return shape;
}

std::vector<float> compute(const Statistic& s, const StatsInput& in) {
  SL_CHECK(s.compute, "statistic " + s.name + " is logged by the trainer, not computed from a capture");
  std::vector<float> v = s.compute(in);
  const int64_t n = numel(row_shape(s, in));
  SL_CHECK((int64_t)v.size() == n, "statistic " + s.name + ": computed " + std::to_string(v.size()) +
                                       " values for a row of " + std::to_string(n));
  return v;
}

std::vector<float> compute(const std::string& name, const StatsInput& in) {
  const Statistic* s = find_statistic(name);
  SL_CHECK(s, "no statistic named '" + name + "' (see sinklab stats --list)");
  SL_CHECK(!s->logged || s->logged(in), "statistic " + name + " is not logged for this capture");
  return compute(*s, in);
}

const Statistic& reported(const Statistic& s, const std::function<bool(const std::string&)>& is_logged) {
  for (const Statistic& p : statistics())
    if (p.supersedes == s.name && is_logged(p.name)) return p;
  return s;
}

std::vector<SummaryCell> summary_cells(const std::vector<double>& eps) {
  std::vector<SummaryCell> cells;
  for (const Statistic& s : statistics()) {
    bool per_eps = false;
    for (const SummaryColumn& c : s.summary) per_eps = per_eps || c.header.find("{eps}") != std::string::npos;
    for (int64_t e = 0; e < (per_eps ? (int64_t)eps.size() : 1); ++e)
      for (const SummaryColumn& c : s.summary) {
        std::string header = c.header;
        if (size_t at = header.find("{eps}"); at != std::string::npos) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%g", eps[e]);
          header.replace(at, 5, buf);
        } else if (e > 0) {
          continue;
        }
        cells.push_back({header, &s, &c, e});
      }
  }
  return cells;
}

std::string attention_map_name(int64_t layer, int64_t head) {
  return "maps/layer" + std::to_string(layer) + "_head" + std::to_string(head);
}

}  // namespace sl::models
