#include "train/interventions.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "models/sink_stats.h"

namespace sl::train {

using models::AttentionEdit;
using models::Intervention;

// The windows' inputs, and their targets from position `from` on (-1 before).
static std::pair<std::vector<int32_t>, std::vector<int32_t>> inputs_targets(const Windows& w, int64_t from) {
  const int64_t B = w.rows, len = w.len();
  std::vector<int32_t> inputs(B * len), targets(B * len);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < len; ++t) {
      inputs[b * len + t] = w.tokens[b * (len + 1) + t];
      targets[b * len + t] = t >= from ? w.tokens[b * (len + 1) + t + 1] : -1;
    }
  return {inputs, targets};
}

double held_out_loss(const models::Decoder& model, const Windows& windows,
                     const std::optional<Intervention>& intervention, int64_t from) {
  const auto [inputs, targets] = inputs_targets(windows, from);
  return cross_entropy(model.forward(inputs, windows.rows, windows.len(), std::nullopt, intervention).logits, targets)
      .item();
}

namespace {

using Kind = AttentionEdit::Kind;

int64_t layers(const InterventionContext& c) { return c.model.config().n_layers; }
int64_t heads(const InterventionContext& c) { return c.model.config().n_heads; }

std::string row_name(const std::string& kind, const std::string& what) { return "intervene/" + kind + "/" + what; }

double delta(const InterventionContext& c, const Intervention& iv) {
  const double d = held_out_loss(c.model, c.windows, iv) - c.base_loss;
  c.tick();
  return d;
}

// An attention edit of one head at a time, of every head of a layer, and of every head.
std::vector<LogRow> per_head(const InterventionContext& c, const std::string& name, Kind kind) {
  const int64_t L = layers(c), H = heads(c);
  LogRow head{row_name(name, "head"), {L, H}, {}}, layer{row_name(name, "layer"), {L}, {}},
      all{row_name(name, "all"), {}, {}};
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h) head.values.push_back((float)delta(c, {l, AttentionEdit{kind, h}, {}}));
  for (int64_t l = 0; l < L; ++l) layer.values.push_back((float)delta(c, {l, AttentionEdit{kind, -1}, {}}));
  all.values.push_back((float)delta(c, {-1, AttentionEdit{kind, -1}, {}}));
  return {head, layer, all};
}

std::vector<int64_t> massive_blocks(const InterventionContext& c) {
  if (c.opt.massive_block >= 0) return {c.opt.massive_block};
  std::vector<int64_t> all(layers(c));
  for (int64_t l = 0; l < layers(c); ++l) all[l] = l;
  return all;
}

std::vector<LogRow> massive(const InterventionContext& c, const std::string& name, bool to_mean) {
  LogRow row{
      row_name(name, "block"), {layers(c)}, std::vector<float>(layers(c), std::numeric_limits<float>::quiet_NaN())};
  for (int64_t l : massive_blocks(c))
    row.values[l] = (float)delta(c, {l, std::nullopt, models::HiddenEdit{c.opt.massive_k, to_mean}});
  return {row};
}

// Where the attention of each layer and head rests, mean over sequences [L, H]: alpha of the first
// data position (the statistics' importance), and the mass on the model's own sink (the kv-bias
// slot and the sink token; empty without). The sink is the own sink where the model has one.
struct FirstAttention {
  std::vector<float> first, own_sink;
  const std::vector<float>& sink() const { return own_sink.empty() ? first : own_sink; }
};

FirstAttention first_attention(const models::Decoder& model, const Windows& windows) {
  const int64_t B = windows.rows;
  const models::Capture cap =
      *model.forward(inputs_targets(windows, 0).first, B, windows.len(), models::CaptureRequest{}).capture;
  const int64_t sink_token = model.config().sink_token ? 1 : 0;
  FirstAttention out;
  for (const models::AttentionCapture& a : cap.attn) {
    const Tensor w = a.normalized ? a.probs : models::proxy_weights(a.probs);
    const int64_t H = w.size(1), own = a.slot_offset + sink_token;
    const std::vector<float> alpha = models::importance(w, a.slot_offset, sink_token + 1);  // [B, H, sink + 1]
    const std::vector<double> mass = models::slot_importance(w, own);                       // [B, H]
    for (int64_t h = 0; h < H; ++h) {
      double f = 0, m = 0;
      for (int64_t b = 0; b < B; ++b)
        f += alpha[(b * H + h) * (sink_token + 1) + sink_token] / B, m += mass[b * H + h] / B;
      out.first.push_back((float)f);
      if (own > 0) out.own_sink.push_back((float)m);
    }
  }
  return out;
}

// The loss change and where the attention goes when the windows' first tokens are changed; the
// loss is over the targets both predict, those of the base from position 1 on and of `changed`
// from position `from` on.
std::vector<LogRow> first_token(const InterventionContext& c, const std::string& name, const Windows& changed,
                                int64_t from) {
  const int64_t L = layers(c), H = heads(c);
  const double base = held_out_loss(c.model, c.windows, std::nullopt, 1);
  const double loss = held_out_loss(c.model, changed, std::nullopt, from);
  c.tick(), c.tick();
  const FirstAttention before = first_attention(c.model, c.windows);
  c.tick();
  const FirstAttention after = first_attention(c.model, changed);
  c.tick();
  std::vector<LogRow> rows{{row_name(name, "loss_change"), {}, {(float)(loss - base)}},
                           {row_name(name, "first_attention"), {L, H}, after.first},
                           {row_name(name, "base_first_attention"), {L, H}, before.first}};
  if (!after.own_sink.empty()) {
    rows.push_back({row_name(name, "own_sink_attention"), {L, H}, after.own_sink});
    rows.push_back({row_name(name, "base_own_sink_attention"), {L, H}, before.own_sink});
  }
  return rows;
}

std::vector<LogRow> first_token_remove(const InterventionContext& c, const std::string& name) {
  const int64_t B = c.windows.rows, n = c.windows.len() + 1;
  Windows removed{{}, B};
  for (int64_t b = 0; b < B; ++b)
    removed.tokens.insert(removed.tokens.end(), c.windows.tokens.begin() + b * n + 1,
                          c.windows.tokens.begin() + (b + 1) * n);
  return first_token(c, name, removed, 0);
}

// The replacement: as asked, else the commonest token after the first positions that is no
// window's first token (not BOS).
int32_t replacement(const InterventionContext& c) {
  if (c.opt.replacement >= 0) return c.opt.replacement;
  const int64_t B = c.windows.rows, n = c.windows.len() + 1;
  std::map<int32_t, int64_t> count;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 1; t < n; ++t) ++count[c.windows.tokens[b * n + t]];
  for (int64_t b = 0; b < B; ++b) count.erase(c.windows.tokens[b * n]);
  SL_CHECK(!count.empty(), "first-token-replace: every token of the windows is a first token; give --replacement ID");
  return std::max_element(count.begin(), count.end(), [](auto& x, auto& y) { return x.second < y.second; })->first;
}

std::vector<LogRow> first_token_replace(const InterventionContext& c, const std::string& name) {
  const int32_t r = replacement(c);
  c.note("first_token_replacement", std::to_string(r));
  Windows replaced = c.windows;
  for (int64_t b = 0; b < replaced.rows; ++b) replaced.tokens[b * (replaced.len() + 1)] = r;
  return first_token(c, name, replaced, 1);
}

// Each head zeroed on each corpus source's windows, beside where its attention rests there.
std::vector<LogRow> head_domain(const InterventionContext& c, const std::string& name) {
  const int64_t L = layers(c), H = heads(c), S = (int64_t)c.by_source->size();
  LogRow loss{row_name(name, "loss"), {S}, {}}, change{row_name(name, "loss_change"), {S, L, H}, {}},
      sink{row_name(name, "sink_attention"), {S, L, H}, {}}, dormant{row_name(name, "dormant"), {S, L, H}, {}};
  std::string sources;
  for (const auto& [source, windows] : *c.by_source) {
    sources += (sources.empty() ? "" : ",") + source;
    const double base = held_out_loss(c.model, windows);
    c.tick();
    const std::vector<float> rests = first_attention(c.model, windows).sink();
    c.tick();
    loss.values.push_back((float)base);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        const double d = held_out_loss(c.model, windows, Intervention{l, AttentionEdit{Kind::ZeroHead, h}, {}}) - base;
        c.tick();
        change.values.push_back((float)d);
        sink.values.push_back(rests[l * H + h]);
        dormant.values.push_back(std::fabs(d) < c.opt.dormant_loss && rests[l * H + h] > c.opt.dormant_sink ? 1.f
                                                                                                            : 0.f);
      }
  }
  c.note("head_domain_sources", sources);
  return {loss, change, sink, dormant};
}

std::string always(const InterventionContext&) { return ""; }

std::string massive_applies(const InterventionContext& c) {
  const int64_t D = c.model.config().d_model;
  if (c.opt.massive_k < 1 || c.opt.massive_k > D)
    return "--massive-k " + std::to_string(c.opt.massive_k) +
           " is not a number of channels; valid: 1 to d_model = " + std::to_string(D);
  if (c.opt.massive_block >= layers(c))
    return "--massive-block " + std::to_string(c.opt.massive_block) + ": the model has blocks 0 to " +
           std::to_string(layers(c) - 1);
  return "";
}

std::string first_token_applies(const InterventionContext& c) {
  const int64_t V = c.model.config().vocab_size;
  if (c.opt.replacement >= V)
    return "--replacement " + std::to_string(c.opt.replacement) + " is not a token; valid: 0 to " +
           std::to_string(V - 1);
  return "";
}

int64_t per_head_forwards(const InterventionContext& c) { return layers(c) * heads(c) + layers(c) + 1; }

}  // namespace

const std::vector<InterventionKind>& intervention_kinds() {
  auto edit = [](const char* name, const char* help, Kind kind,
                 std::function<std::string(const InterventionContext&)> why) {
    return InterventionKind{
        name, help, false, std::move(why), per_head_forwards, [name, kind](const InterventionContext& c) {
          return per_head(c, name, kind);
        }};
  };
  auto massive_kind = [](const char* name, const char* help, bool to_mean) {
    return InterventionKind{name,
                            help,
                            false,
                            massive_applies,
                            [](const InterventionContext& c) { return (int64_t)massive_blocks(c).size(); },
                            [name, to_mean](const InterventionContext& c) { return massive(c, name, to_mean); }};
  };
  static const std::vector<InterventionKind> kinds = {
      edit("sink-attention-kept", "attention to the sink key set to 0, the other weights left as they are",
           Kind::DropSinkAttention, always),
      edit("sink-attention-rescaled", "attention to the sink key set to 0, the others rescaled to the row's total",
           Kind::DropSinkAttentionRescaled, always),
      edit("sink-value-zero", "the sink key's value v_0 set to 0", Kind::ZeroSinkValue,
           [](const InterventionContext& c) -> std::string {
             const auto& a = c.model.config().attn;
             if (a.kv_bias && !a.kv_bias_value_learnable)
               return "the sink key is the kv-bias slot, whose value is fixed at zero (attention.kv_bias_value = "
                      "zero): there is no value vector to ablate";
             return "";
           }),
      edit("sink-value-mean", "v_0 set to the mean of the other keys' values", Kind::MeanSinkValue, always),
      edit("head-zero", "a head's output set to 0 (on the held-out windows)", Kind::ZeroHead, always),
      massive_kind("massive-zero", "after a block, the k largest |h| of the first position set to 0", false),
      massive_kind("massive-mean", "... set to their mean over the other positions", true),
      {"first-token-remove", "the windows' first token (BOS) removed", false, always,
       [](const InterventionContext&) -> int64_t { return 4; },
       [](const InterventionContext& c) { return first_token_remove(c, "first-token-remove"); }},
      {"first-token-replace", "the first token replaced by --replacement", false, first_token_applies,
       [](const InterventionContext&) -> int64_t { return 4; },
       [](const InterventionContext& c) { return first_token_replace(c, "first-token-replace"); }},
      {"head-domain", "each head zeroed on each corpus source's windows: the active/dormant map", true,
       [](const InterventionContext& c) -> std::string {
         if (!c.by_source)
           return "it needs a run on the prepared corpus (data.source = corpus), whose validation documents have "
                  "sources";
         if (c.by_source->empty()) return "no corpus source has a validation document as long as a window";
         return "";
       },
       [](const InterventionContext& c) {
         return (int64_t)(c.by_source ? c.by_source->size() : 0) * (layers(c) * heads(c) + 2);
       },
       [](const InterventionContext& c) { return head_domain(c, "head-domain"); }},
  };
  return kinds;
}

std::vector<ChosenIntervention> parse_interventions(const std::string& list) {
  const auto& kinds = intervention_kinds();
  std::vector<bool> chosen(kinds.size(), false), named(kinds.size(), false);
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t end = std::min(list.find(',', pos), list.size());
    const std::string name = list.substr(pos, end - pos);
    bool any = false;
    for (size_t i = 0; i < kinds.size(); ++i) {
      const std::string k = kinds[i].name;
      const bool by_name = k == name || k.rfind(name + "-", 0) == 0;
      if (name == "all" || by_name) chosen[i] = any = true;
      if (by_name) named[i] = true;
    }
    SL_CHECK(any, "--intervene: no intervention '" + name + "'; valid: " + interventions_help());
    pos = end + 1;
  }
  std::vector<ChosenIntervention> out;
  for (size_t i = 0; i < kinds.size(); ++i)
    if (chosen[i]) out.push_back({&kinds[i], named[i]});
  return out;
}

std::string interventions_help() {
  std::string s;
  for (const InterventionKind& k : intervention_kinds()) s += std::string(s.empty() ? "" : ", ") + k.name;
  return s +
         "; a name's prefix up to a dash names its group (sink-attention, sink-value, massive, first-token, "
         "head); all: every one";
}

}  // namespace sl::train
