// Tensors in the safetensors format (Hugging Face's `safetensors`; PyTorch, JAX and numpy read
// it), written by our own code:
//   [8 bytes: N, unsigned little-endian][N bytes: a JSON header][the data]
// The header maps each tensor's name to {"dtype":"F32","shape":[...],"data_offsets":[begin,end]},
// byte offsets into the data, which the tensors fill back to back in name order with no gaps;
// "__metadata__" holds string pairs. Spaces pad the header to a multiple of 8 bytes, so the data
// starts 8-byte aligned. Values are float32, little-endian, row-major.
#pragma once
#include <map>
#include <string>

#include "engine/tensor.h"

namespace sl {

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace sl
