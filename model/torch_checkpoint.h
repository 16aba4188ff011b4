// Reads the tensors of a `torch.save` zip archive (pytorch_model.bin) without Python.
//
// libtorch's own pickle_load turns collections.OrderedDict into None, and every state dict that
// nn.Module.state_dict() — hence Hugging Face's save_pretrained — writes is an OrderedDict. So this
// interprets the pickle itself: the opcodes torch.save emits (protocols 2–5), storages by
// persistent id from the archive's data/ records, tensors rebuilt as views of them.
#pragma once

#include <filesystem>

#include "model/safetensors.h"

namespace recmodel::model {

// Returns the name → tensor entries of the state dict in `path`, in file order. Entries whose
// value is not a tensor (e.g. a saved step counter) are skipped. Throws DataError naming the file
// for anything that is not a readable torch.save archive of a dict of tensors.
NamedTensors read_torch_checkpoint(const std::filesystem::path& path);

}  // namespace recmodel::model
