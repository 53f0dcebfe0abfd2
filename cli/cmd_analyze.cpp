#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "cli/commands.h"
#include "engine/h5log.h"
#include "train/checkpointing.h"
#include "train/interventions.h"
#include "train/lm_task.h"
#include "train/progress.h"
#include "train/streaming_eval.h"

namespace sl::cli {

namespace {

// Defaults of the options that are not the interventions' own (train::InterventionOptions).
constexpr int64_t kStreams = 4, kWindows = 32, kLengthInContexts = 16;

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::string help_text() {
  const train::InterventionOptions d;
  std::string kinds;
  for (const train::InterventionKind& k : train::intervention_kinds()) {
    char line[160];
    std::snprintf(line, sizeof line, "      %-24s %s\n", k.name, k.help);
    kinds += line;
  }
  return "usage: sinklab analyze runs/NAME [--step N | --every-checkpoint]\n"
         "           [--streaming W=..,k=.. ...] [--length N] [--streams B]\n"
         "           [--intervene NAME[,NAME...]] [--windows N] [--massive-k K] [--massive-block L]\n"
         "           [--replacement ID] [--dormant-loss X] [--dormant-sink Y]\n\n"
         "Causal interventions and streaming evaluation of a language-model run, on its newest checkpoint\n"
         "(or --step N, or every checkpoint in step order), written as rows (the step is the checkpoint's)\n"
         "to runs/NAME/analysis.h5. Datasets measured again replace those of the same name; the others are\n"
         "kept. The file is replaced whole and only when complete; nothing else in the run changes.\n\n"
         "--streaming W=32,k=4   perplexity against position with a KV cache of W tokens: the k first (the\n"
         "    sinks) and the W - k most recent (k = 0: a window; k < W <= the context). Positions are\n"
         "    places in the cache (StreamingLLM). Repeat the option, or separate settings by ';'.\n"
         "    Streams: --streams B (default " +
         std::to_string(kStreams) + ") of --length N + 1 tokens (default " + std::to_string(kLengthInContexts) +
         " x the context) of\n"
         "    running validation text: from evenly spaced documents on, the documents concatenated without\n"
         "    the BOS between them, so that a stream's only BOS is its first token (a BOS inside would be a\n"
         "    sink in every window). Rows streaming/W32_k4/nll [N] (mean over streams; position t\n"
         "    predicts token t + 1), .../ppl over all positions, .../ppl_beyond over t >= W.\n\n"
         "--intervene NAMES      the change of the held-out loss (nats per token, positive: worse) against\n"
         "    the unmodified model (intervene/loss), on --windows N (default " +
         std::to_string(kWindows) +
         ") validation windows of\n"
         "    the context starting at documents. The sink key is the kv-bias slot where the model has\n"
         "    one, else position 0 (the sink token where the model has one, else the first token).\n" +
         kinds +
         "    A name's prefix up to a dash names its group (sink-attention, sink-value, massive, first-token,\n"
         "    head); all: every one that applies. Per layer and head: rows intervene/NAME/head [L, H] (one\n"
         "    head at a time), /layer [L] (every head of the layer), /all.\n"
         "    --massive-k K (default " +
         std::to_string(d.massive_k) +
         ") channels, after --massive-block L (default: each block in turn).\n"
         "    --replacement ID: first-token-replace's token (default: the commonest token of the windows\n"
         "    that is no window's first token). Rows: loss_change, first_attention [L, H] (alpha of the\n"
         "    new first position), base_first_attention, and with a slot or sink token own_sink_attention.\n"
         "    head-domain (corpus runs): a head is dormant on a source (Brown, KJV, GCIDE, man pages) when\n"
         "    zeroing it changes that source's loss by less than --dormant-loss X (default " +
         num(d.dormant_loss) +
         " nats)\n"
         "    while its attention on the sink key, mean over queries, exceeds --dormant-sink Y (default " +
         num(d.dormant_sink) +
         ");\n"
         "    else active. Rows [S, L, H]: loss_change, sink_attention, dormant (1/0).\n\n"
         "Plot with: /usr/bin/python3 scripts/plot_analysis.py runs/NAME\n";
}

int64_t integer(const std::string& option, const std::string& v) {
  size_t end = 0;
  long long n = -1;
  try {
    n = std::stoll(v, &end);
  } catch (const std::exception&) {
  }
  SL_CHECK(end == v.size() && n >= 0, option + " wants a whole number >= 0, got '" + v + "'");
  return n;
}

double number(const std::string& option, const std::string& v) {
  size_t end = 0;
  double x = NAN;
  try {
    x = std::stod(v, &end);
  } catch (const std::exception&) {
  }
  SL_CHECK(end == v.size() && x >= 0, option + " wants a number >= 0, got '" + v + "'");
  return x;
}

// "W=32,k=4" (k may be left out: 0), several separated by ';'.
std::vector<models::CachePolicy> parse_streaming(const std::string& spec) {
  std::vector<models::CachePolicy> out;
  size_t pos = 0;
  while (pos <= spec.size()) {
    const size_t end = std::min(spec.find(';', pos), spec.size());
    const std::string item = spec.substr(pos, end - pos);
    long long W = -1, k = 0;
    int used = 0;
    const bool ok = (std::sscanf(item.c_str(), "W=%lld,k=%lld%n", &W, &k, &used) == 2 ||
                     std::sscanf(item.c_str(), "W=%lld%n", &W, &used) == 1) &&
                    used == (int)item.size() && W >= 1 && k >= 0;
    SL_CHECK(ok, "--streaming wants W=SIZE,k=SINKS (W >= 1 tokens in the cache, k >= 0 of them the first), got '" +
                     item + "'");
    out.push_back({W, k});
    pos = end + 1;
  }
  return out;
}

std::string setting_name(const models::CachePolicy& p) {
  return "streaming/W" + std::to_string(p.window) + "_k" + std::to_string(p.sinks);
}

// The rows of one streaming setting from nll [B * N].
std::vector<train::LogRow> streaming_rows(const models::CachePolicy& p, const std::vector<float>& nll, int64_t B) {
  const int64_t N = (int64_t)nll.size() / B;
  train::LogRow per{setting_name(p) + "/nll", {N}, std::vector<float>(N, 0.f)};
  double all = 0, beyond = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < N; ++t) {
      const float v = nll[b * N + t];
      per.values[t] += v / B;
      all += v;
      if (t >= p.window) beyond += v;
    }
  const int64_t n_beyond = B * std::max<int64_t>(N - p.window, 0);
  return {per,
          {setting_name(p) + "/ppl", {}, {(float)std::exp(all / (B * N))}},
          {setting_name(p) + "/ppl_beyond", {}, {n_beyond ? (float)std::exp(beyond / n_beyond) : NAN}}};
}

}  // namespace

const char* const kAnalyzeHelp = [] {
  static const std::string text = help_text();
  return text.c_str();
}();

int cmd_analyze(const Args& args) {
  SL_CHECK(!args.empty() && args[0].rfind("--", 0) != 0, "missing run directory (see sinklab analyze --help)");
  train::RunDir dir = train::open_run_dir(args[0]);
  train::CheckpointChoice which;
  std::vector<models::CachePolicy> streaming;
  int64_t length = -1, streams = kStreams, windows = kWindows;
  std::string intervene;
  train::InterventionOptions opt;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--every-checkpoint") {
      which.every = true;
      continue;
    }
    SL_CHECK(i + 1 < args.size(), "option " + a + " needs a value (see sinklab analyze --help)");
    const std::string& v = args[++i];
    if (a == "--step") which.step = integer(a, v);
    else if (a == "--streaming")
      for (auto p : parse_streaming(v)) streaming.push_back(p);
    else if (a == "--length") length = integer(a, v);
    else if (a == "--streams") streams = integer(a, v);
    else if (a == "--intervene") intervene += (intervene.empty() ? "" : ",") + v;
    else if (a == "--windows") windows = integer(a, v);
    else if (a == "--massive-k") opt.massive_k = integer(a, v);
    else if (a == "--massive-block") opt.massive_block = integer(a, v);
    else if (a == "--replacement") opt.replacement = (int32_t)integer(a, v);
    else if (a == "--dormant-loss") opt.dormant_loss = number(a, v);
    else if (a == "--dormant-sink") opt.dormant_sink = number(a, v);
    else
      throw Error("unknown option '" + a + "' (valid: --step --every-checkpoint --streaming --length --streams " +
                  "--intervene --windows --massive-k --massive-block --replacement --dormant-loss --dormant-sink)");
  }
  SL_CHECK(!(which.every && which.step >= 0), "--step and --every-checkpoint exclude each other");
  SL_CHECK(!streaming.empty() || !intervene.empty(), "nothing to analyze: give --streaming and/or --intervene");
  SL_CHECK(streams >= 1 && windows >= 1, "--streams and --windows want at least 1");
  const std::vector<int64_t> steps = train::chosen_steps(dir, which, "analysis.h5");  // checked before loading
  const size_t checkpoints = which.every ? steps.size() : 1;

  Config cfg = Config::load(dir.config());
  SL_CHECK(cfg.s("model.type") == "decoder",
           "analyze needs a language model (model.type = decoder); this run's is '" + cfg.s("model.type") +
               "', which has no causal position 0 to ablate and no stream to continue");
  ParamStore ps;
  auto task = train::make_task(cfg, ps);
  const auto& lm = dynamic_cast<const train::LMTask&>(*task);
  const models::Decoder& model = lm.model();
  const int64_t T = model.config().context;

  // Everything checked before the first checkpoint is read.
  if (length < 0) length = kLengthInContexts * T;
  for (const models::CachePolicy& p : streaming) {
    SL_CHECK(model.can_decode(), "--streaming needs a causal or sliding mask; attention.mask is '" +
                                     model.config().attn.mask + "', whose queries see later keys");
    p.check(model.positions());
    SL_CHECK(p.window <= length, "--streaming " + p.str() + ": the window is longer than the streams (--length " +
                                     std::to_string(length) + " tokens); valid: W <= " + std::to_string(length));
  }
  const train::Windows held_out{intervene.empty() ? std::vector<int32_t>{} : lm.data().held_out(windows, T), windows};
  std::vector<train::ChosenIntervention> chosen =
      intervene.empty() ? std::vector<train::ChosenIntervention>{} : train::parse_interventions(intervene);
  std::optional<std::map<std::string, train::Windows>> by_source;  // read only when asked for
  if (lm.data().held_out_by_source &&
      std::any_of(chosen.begin(), chosen.end(), [](const auto& c) { return c.kind->needs_sources; })) {
    by_source.emplace();
    for (auto& [source, w] : lm.data().held_out_by_source(windows, T))
      (*by_source)[source] = train::Windows{w, (int64_t)w.size() / (T + 1)};
  }
  std::map<std::string, std::string> notes;
  std::function<void()> tick;  // set below, once the progress exists
  train::InterventionContext ctx{model,
                                 held_out,
                                 0,
                                 opt,
                                 by_source ? &*by_source : nullptr,
                                 [&] { tick(); },
                                 [&](const std::string& k, const std::string& v) { notes[k] = v; }};
  std::vector<const train::InterventionKind*> kinds;
  for (const auto& c : chosen) {
    const std::string why = c.kind->why_not(ctx);
    SL_CHECK(why.empty() || !c.named,
             "--intervene " + std::string(c.kind->name) + " does not apply to " + dir.path + ": " + why);
    if (why.empty()) kinds.push_back(c.kind);
    else std::printf("skipping %s: %s\n", c.kind->name, why.c_str());
  }

  std::vector<int32_t> stream_tokens;
  try {
    if (!streaming.empty()) stream_tokens = train::running_text(lm.data().held_out, streams, length, lm.data().bos);
  } catch (const Error& e) {
    throw Error("--length " + std::to_string(length) + ": the validation data is too short (" + e.what() + ")");
  }

  // Progress in tokens processed: a stream step is B tokens, a held-out forward rows x T.
  const int64_t forward_tokens = windows * T;
  int64_t per_checkpoint = (int64_t)streaming.size() * streams * length + (kinds.empty() ? 0 : forward_tokens);
  for (const auto* k : kinds) per_checkpoint += k->forwards(ctx) * forward_tokens;
  train::Progress progress("analyze", per_checkpoint * (int64_t)checkpoints);
  std::string now;
  tick = [&] { progress.advance(now, forward_tokens); };

  const std::string out = dir.path + "/analysis.h5";
  train::StagedFile staged(out, /*from_existing=*/true);
  NoGrad ng;
  {
    H5Log log(staged.tmp());
    log.set_attr("config", cfg.to_yaml());
    if (!streaming.empty())
      log.set_attr("streaming_streams", std::to_string(streams) + " validation streams of " + std::to_string(length) +
                                            " + 1 tokens starting at documents");
    if (!kinds.empty())
      log.set_attr("intervene_windows", std::to_string(windows) + " validation windows of " + std::to_string(T) +
                                            " + 1 tokens starting at documents");
    std::set<std::string> written;  // datasets of this analysis: earlier rows of the same name are dropped
    auto write = [&](const train::LogRow& r, int64_t step) {
      if (written.insert(r.name).second) log.remove(r.name);
      log.append(r.name, step, r.values.data(), r.shape);
    };
    const train::Replayed r =
        train::replay_checkpoints(dir, which, ps, "analysis.h5", [&](int64_t step, size_t, size_t) {
          for (const models::CachePolicy& p : streaming) {
            now = "step " + std::to_string(step) + ", streaming " + p.str();
            int64_t done = 0;
            const std::vector<float> nll = train::streaming_nll(model, stream_tokens, streams, p, [&](int64_t t) {
              progress.advance(now, (t - done) * streams);
              done = t;
            });
            for (const train::LogRow& row : streaming_rows(p, nll, streams)) write(row, step);
          }
          if (kinds.empty()) return;
          now = "step " + std::to_string(step) + ", held-out loss";
          ctx.base_loss = train::held_out_loss(model, held_out);
          tick();
          write({"intervene/loss", {}, {(float)ctx.base_loss}}, step);
          for (const train::InterventionKind* k : kinds) {
            now = "step " + std::to_string(step) + ", " + k->name;
            for (const train::LogRow& row : k->measure(ctx)) write(row, step);
          }
        });
    progress.finish();
    for (const auto& [k, v] : notes) log.set_attr(k, v);
    log.flush();
    std::printf("analyzed %s\n", r.str().c_str());
  }
  staged.commit();
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace sl::cli
