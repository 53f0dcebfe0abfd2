// The active/dormant split of heads on the Bigram-Backcopy task (Guo et al. 2024): a head that
// copies must look at the token before a trigger, but on every other query it has nothing to do
// and parks its attention on BOS. Triggers are token ids 0..k-1 (data/backcopy.h), so the roles
// of the probe's positions follow from its tokens.
#include "engine/checkpoint.h"
#include "train/checkpointing.h"
#include "train/lm_data.h"
#include "train/model_builder.h"
#include "train/sweep.h"

namespace sl::train {

std::vector<HeadDomains> backcopy_head_domains(const Config& cfg, const std::string& checkpoint) {
  SL_CHECK(cfg.s("data.source") == "backcopy", "the active/dormant split needs data.source = backcopy");
  const int64_t T = std::min(cfg.i("stats.probe_len"), cfg.i("model.context")), B = cfg.i("stats.probe_batch");
  LMData data = open_lm_data(cfg, 1, cfg.i("model.context"), B, T);  // the probe the run logged on
  ParamStore ps;
  models::Decoder model(decoder_config(cfg, data.vocab_size), ps);
  Rng rng(0);
  ps.finalize(rng);
  load_params(load_checkpoint(checkpoint), ps, checkpoint);

  std::vector<int32_t> inputs(B * T);
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(data.probe.begin() + b * (T + 1), T, inputs.begin() + b * T);
  models::Capture cap;
  {
    NoGrad ng;
    cap = *model.forward(inputs, B, T, models::CaptureRequest{}).capture;
  }
  const int32_t triggers = (int32_t)cfg.i("data.backcopy_triggers");
  std::vector<HeadDomains> out;
  for (int64_t l = 0; l < (int64_t)cap.attn.size(); ++l) {
    Tensor A = cap.attn[l].probs.contiguous();  // [B, H, T, S]; BOS is key column slot_offset
    const int64_t H = A.size(1), S = A.size(3), bos = cap.attn[l].slot_offset;
    for (int64_t h = 0; h < H; ++h) {
      double dormant = 0, active = 0;
      int64_t n_dormant = 0, n_active = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 1; t < T; ++t) {  // the BOS query attends only to itself
          const float a = A.data()[((b * H + h) * T + t) * S + bos];
          const int32_t x = inputs[b * T + t];
          if (x < triggers && t >= 2) active += a, ++n_active;  // the next token copies x_{t-1}
          else if (x >= triggers) dormant += a, ++n_dormant;
        }
      out.push_back({l, h, n_dormant ? dormant / n_dormant : 0, n_active ? active / n_active : 0});
    }
  }
  return out;
}

}  // namespace sl::train
