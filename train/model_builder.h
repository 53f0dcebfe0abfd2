// Configuration values -> plain model configs. The only place that knows both the config keys
// and the model structs, so models stay free of the configuration system.
#pragma once
#include "models/decoder.h"
#include "models/vit.h"
#include "train/config.h"

namespace sl::train {

models::DecoderConfig decoder_config(const Config& cfg, int64_t vocab_size);
models::ViTConfig vit_config(const Config& cfg);

}  // namespace sl::train
