// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw data. Read strictly, written atomically.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace recmodel::model {

namespace fs = std::filesystem;

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Reads every tensor of a .safetensors file as a CPU tensor of its stored dtype
// (F32, F16, BF16, F64, I64, I32, ...). Throws DataError naming the file and tensor.
NamedTensors read_safetensors(const fs::path& path);

// Writes tensors (contiguous CPU copies are made) with optional string metadata, atomically.
void write_safetensors(const fs::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace recmodel::model
