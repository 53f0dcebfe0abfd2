#include "train/vit_task.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/patches.h"
#include "train/lm_task.h"
#include "train/model_builder.h"
#include "train/stats_rows.h"

namespace sl::train {

ViTTask::ViTTask(const Config& cfg, ParamStore& ps)
    : augment_(cfg.b("vit.augment")), flip_(cfg.b("vit.flip")), crop_(cfg.i("data.augment_crop")),
      seed_((uint64_t)cfg.i("data.seed")), probe_B_(cfg.i("stats.probe_batch")) {
  const std::string source = cfg.s("data.source");
  if (source == "fashion_mnist") {
    train_ = data::load_fashion_mnist("train", cfg.s("data.dir"));
    test_ = data::load_fashion_mnist("test", cfg.s("data.dir"));
  } else if (source == "synthetic_images") {
    const int side = (int)cfg.i("vit.image_size"), classes = (int)cfg.i("vit.classes");
    train_ = data::synthetic_images(4096, side, side, classes, seed_);
    test_ = data::synthetic_images(1024, side, side, classes, seed_ + 1);
  } else {
    throw Error("model.type = vit needs data.source = fashion_mnist or synthetic_images, got '" + source + "'");
  }
  SL_CHECK(cfg.i("vit.channels") == 1, "vit: the image sets are greyscale, so vit.channels must be 1");
  SL_CHECK(train_.rows == cfg.i("vit.image_size") && train_.cols == train_.rows,
           "vit.image_size is " + std::to_string(cfg.i("vit.image_size")) + " but the images are " +
               std::to_string(train_.rows) + " x " + std::to_string(train_.cols));
  SL_CHECK(train_.num_classes <= cfg.i("vit.classes"), "vit.classes (" + std::to_string(cfg.i("vit.classes")) +
                                                           ") is below the data's " + std::to_string(train_.num_classes));
  if (cfg.b("vit.normalize")) {
    double s = 0, s2 = 0;
    for (float v : train_.images) s += v, s2 += (double)v * v;
    const double n = (double)train_.images.size();
    mean_ = (float)(s / n);
    std_ = (float)std::sqrt(std::max(s2 / n - (s / n) * (s / n), 1e-12));
  }
  model_ = std::make_unique<models::ViT>(vit_config(cfg), ps);
  probe_B_ = std::min<int64_t>(probe_B_, test_.count);
  stats_opt_.first_k = cfg.i("stats.first_k");
  stats_opt_.eps = cfg.fl("stats.eps");
  stats_opt_.vit = true;
  stats_opt_.first_patch = model_->config().first_patch();
  stats_opt_.background = data::background_patches(test_, 0, probe_B_, cfg.i("vit.patch"), (float)cfg.f("stats.background_std"));
  shuffle_epoch();
}

void ViTTask::shuffle_epoch() {
  order_.resize(train_.count);
  std::iota(order_.begin(), order_.end(), 0);
  Rng rng(seed_ * 1000003 + (uint64_t)epoch_);
  for (int64_t i = train_.count - 1; i > 0; --i) std::swap(order_[i], order_[rng.uniform_int(i + 1)]);
}

void ViTTask::set_data_state(const std::vector<int64_t>& s) {
  SL_CHECK(s.size() == 2, "ViTTask: data state has " + std::to_string(s.size()) + " values, expected 2 (epoch, cursor)");
  epoch_ = s[0], cursor_ = s[1];
  shuffle_epoch();
}

Tensor ViTTask::batch_of(const data::ImageSet& set, const std::vector<int32_t>& idx, uint64_t augment_seed) const {
  const int64_t R = set.rows, C = set.cols, n = (int64_t)idx.size();
  Tensor x = Tensor::empty({n, 1, R, C});
  Rng rng(augment_seed);
  for (int64_t i = 0; i < n; ++i) {
    const float* src = set.images.data() + (int64_t)idx[i] * R * C;
    float* dst = x.data() + i * R * C;
    int64_t dy = 0, dx = 0;
    bool mirror = false;
    if (augment_seed) {
      dy = (int64_t)rng.uniform_int(2 * crop_ + 1) - crop_;
      dx = (int64_t)rng.uniform_int(2 * crop_ + 1) - crop_;
      mirror = flip_ && rng.uniform() < 0.5;
    }
    // A shifted (zero-padded) and possibly mirrored copy: a random crop of the padded image.
    for (int64_t y = 0; y < R; ++y)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t sy = y + dy, sx = (mirror ? C - 1 - c : c) + dx;
        const float v = sy >= 0 && sy < R && sx >= 0 && sx < C ? src[sy * C + sx] : 0.f;
        dst[y * C + c] = (v - mean_) / std_;
      }
  }
  return x;
}

std::vector<int32_t> ViTTask::next_indices(int64_t batch) {
  std::vector<int32_t> idx(batch);
  for (int64_t i = 0; i < batch; ++i) {
    if (cursor_ == train_.count) {
      ++epoch_, cursor_ = 0;
      shuffle_epoch();
    }
    idx[i] = order_[cursor_++];
  }
  return idx;
}

TrainLoss ViTTask::train_loss(int64_t batch, bool with_stats) {
  SL_CHECK(!with_stats, "stats.source = train measures the decoder's training forward (model.type=decoder)");
  std::vector<int32_t> idx = next_indices(batch), labels(batch);
  for (int64_t i = 0; i < batch; ++i) labels[i] = train_.labels[idx[i]];
  // The augmentation seed depends only on the data position, so a resumed run draws the same.
  uint64_t aug = 0;
  if (augment_) aug = (seed_ * 0x9E3779B97F4A7C15ull + (uint64_t)(epoch_ * train_.count + cursor_)) | 1;
  models::ModelOutput out = model_->forward(batch_of(train_, idx, aug));
  Tensor loss = cross_entropy(out.logits, labels);
  return {out.aux_loss.defined() ? add(loss, out.aux_loss) : loss, {}};
}

std::vector<std::pair<std::string, double>> ViTTask::evaluate(int64_t batches, int64_t batch) {
  NoGrad ng;
  const int64_t n = batches == 0 ? test_.count : std::min(test_.count, batches * batch);
  const int64_t chunk = 500;
  double loss = 0, correct = 0;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t m = std::min(chunk, n - start);
    std::vector<int32_t> idx(m), labels(m);
    for (int64_t i = 0; i < m; ++i) idx[i] = (int32_t)(start + i), labels[i] = test_.labels[start + i];
    Tensor logits = model_->forward(batch_of(test_, idx, 0)).logits;
    loss += cross_entropy(logits, labels).item() * m;
    const int64_t K = logits.size(1);
    for (int64_t i = 0; i < m; ++i) {
      const float* row = logits.data() + i * K;
      correct += (std::max_element(row, row + K) - row) == labels[i];
    }
  }
  return {{"val/loss", loss / n}, {"val/accuracy", correct / n}};
}

models::Capture ViTTask::probe_forward() {
  NoGrad ng;
  std::vector<int32_t> idx(probe_B_);
  std::iota(idx.begin(), idx.end(), 0);
  return *model_->forward(batch_of(test_, idx, 0), models::CaptureRequest{}).capture;
}

std::vector<LogRow> ViTTask::probe_stats() {
  const models::Capture cap = probe_forward();
  std::vector<LogRow> rows = statistics_rows(models::StatsInput(cap.attn, cap.hidden, cap.moe, stats_opt_));
  if (!probe_images_logged_) {
    const int64_t R = test_.rows, C = test_.cols;
    rows.push_back({"vit/probe_images", {probe_B_, R, C}, std::vector<float>(test_.images.begin(), test_.images.begin() + probe_B_ * R * C)});
    probe_images_logged_ = true;
  }
  return rows;
}

LogRow ViTTask::attention_map(int64_t layer, int64_t head) { return attention_map_row(probe_forward().attn, layer, head); }

}  // namespace sl::train
