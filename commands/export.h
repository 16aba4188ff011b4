// `recmodel export`: ONNX files (fp32, and int8 with --quantize int8) in the layout transformers.js
// and Optimum load: onnx/model.onnx, onnx/model_quantized.onnx beside config.json and the
// tokenizer files; checked by onnx::checker and shape inference, verified with ONNX Runtime.
#pragma once

#include "commands/command.h"

namespace recmodel {

// Adds the options of `recmodel export` to `command` and returns its action.
CommandAction register_export(CLI::App& command, const Console& console);

}  // namespace recmodel
