// Image classification with the ViT on Fashion-MNIST (data.source = fashion_mnist, IDX files
// in data.dir) or the synthetic image set (synthetic_images: 4096 training and 1024 test images
// from data.seed). Training: shuffled epochs, each image optionally shifted by up to
// data.augment_crop pixels (zero padding) and flipped (vit.augment, vit.flip), then
// standardised with the training set's pixel mean and std (vit.normalize).
// Evaluation: val/loss and val/accuracy (a fraction) on the first eval_batches x batch test
// images, or on the whole test set (10k for Fashion-MNIST) when train.eval_batches = 0.
// Probe: the first stats.probe_batch test images; the first probe_stats() call of a process
// also logs them (vit/probe_images [B, H, W], channel 0, unnormalised) for the plots.
#pragma once
#include <memory>

#include "data/idx.h"
#include "models/stats_input.h"
#include "models/vit.h"
#include "train/task.h"

namespace sl::train {

class ViTTask : public Task {
 public:
  ViTTask(const Config& cfg, ParamStore& ps);
  TrainLoss train_loss(int64_t batch, bool with_stats) override;
  void skip_train_batch(int64_t batch) override { next_indices(batch); }
  std::vector<std::pair<std::string, double>> evaluate(int64_t batches, int64_t batch) override;
  std::vector<LogRow> probe_stats() override;
  LogRow attention_map(int64_t layer, int64_t head) override;
  int64_t tokens_per_sequence() const override { return model_->config().tokens(); }
  std::vector<int64_t> data_state() const override { return {epoch_, cursor_}; }
  void set_data_state(const std::vector<int64_t>& s) override;

 private:
  // Images idx of `set` as a normalised [n, C, S, S] batch; `augment_seed` > 0 augments.
  Tensor batch_of(const data::ImageSet& set, const std::vector<int32_t>& idx, uint64_t augment_seed) const;
  models::Capture probe_forward();
  void shuffle_epoch();

  data::ImageSet train_, test_;
  std::unique_ptr<models::ViT> model_;
  float mean_ = 0, std_ = 1;
  bool augment_, flip_;
  int64_t crop_;
  uint64_t seed_;
  int64_t epoch_ = 0, cursor_ = 0;
  std::vector<int32_t> next_indices(int64_t batch);  // the next training images, epoch by epoch
  std::vector<int32_t> order_;  // this epoch's permutation of the training set
  int64_t probe_B_;
  bool probe_images_logged_ = false;
  models::StatsOptions stats_opt_;
};

}  // namespace sl::train
