// The causal interventions of `sinklab analyze --intervene NAME[,NAME]`, declared once. Each
// edits the forward pass (models/intervention.h) and measures the change of the held-out loss
// against the unmodified model (nats per token; positive: the edit hurts), per layer and head
// where that applies, as rows intervene/NAME/... of analysis.h5:
//   sink-attention-kept|rescaled, sink-value-zero|mean, head-zero
//                          .../head [L, H] one head at a time, .../layer [L] every head of a
//                          layer at once, .../all every head of every layer
//   massive-zero|mean      .../block [L]: the ablation after block l (NaN where not asked for)
//   first-token-remove|replace   .../loss_change, and where the attention goes instead:
//                          .../first_attention [L, H] alpha of the new first position and
//                          .../base_first_attention of the original first token; with a
//                          kv-bias slot or sink token also .../own_sink_attention and its base
//   head-domain            per corpus source s (attribute head_domain_sources): .../loss [S],
//                          .../loss_change, .../sink_attention and .../dormant [S, L, H]
// The loss of first-token changes is over the targets both inputs predict (from the second on).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "models/decoder.h"
#include "train/task.h"

namespace sl::train {

struct InterventionOptions {
  int64_t massive_k = 3;       // channels ablated
  int64_t massive_block = -1;  // -1: after each block in turn
  int32_t replacement = -1;    // first-token-replace's token; -1: the commonest of the windows
  double dormant_loss = 0.01;  // a head is dormant on a domain when ablating it changes the loss
  double dormant_sink = 0.5;   // by less than this and its attention on the sink exceeds this
};

// Token windows: `rows` rows of len + 1 tokens (inputs the first len, targets the last len).
struct Windows {
  std::vector<int32_t> tokens;
  int64_t rows = 0;
  int64_t len() const { return (int64_t)tokens.size() / rows - 1; }
};

struct InterventionContext {
  const models::Decoder& model;
  const Windows& windows;  // held-out, of the model's context
  double base_loss;        // the unmodified model's loss on them
  const InterventionOptions& opt;
  const std::map<std::string, Windows>* by_source;                   // held-out windows per corpus source, or null
  std::function<void()> tick;                                        // after each forward, for the ETA
  std::function<void(const std::string&, const std::string&)> note;  // a string attribute of the file
};

struct InterventionKind {
  const char* name;
  const char* help;    // one line for --help
  bool needs_sources;  // reads InterventionContext::by_source
  // "" when it applies to the model (and data), else why not.
  std::function<std::string(const InterventionContext&)> why_not;
  std::function<int64_t(const InterventionContext&)> forwards;  // how many, for the ETA
  std::function<std::vector<LogRow>(const InterventionContext&)> measure;
};

const std::vector<InterventionKind>& intervention_kinds();
// The kinds a comma-separated list names, in the table's order: a name stands for every kind it
// begins up to a dash (sink-attention: -kept and -rescaled; head: head-zero and head-domain),
// `all` for every kind. `named`: chosen other than by `all` (one that does not apply is an
// error then, rather than skipped).
struct ChosenIntervention {
  const InterventionKind* kind;
  bool named;
};
std::vector<ChosenIntervention> parse_interventions(const std::string& list);
// The groups and names for --help.
std::string interventions_help();

// Mean cross-entropy over the targets of the windows from position `from` on, under an intervention.
double held_out_loss(const models::Decoder& model, const Windows& windows,
                     const std::optional<models::Intervention>& intervention = std::nullopt, int64_t from = 0);

}  // namespace sl::train
