// A model scored on a prepared split: the loop `recmodel evaluate --model --data` and
// `recmodel report --data` share, so both print the same numbers for the same split.
#pragma once

#include <cstdint>
#include <functional>

#include <torch/torch.h>

#include "data/dataset_file.h"
#include "metrics/evaluation.h"
#include "model/model_open.h"

namespace recmodel::model {

struct SplitEvaluationOptions {
  size_t batch_size = 64;              // examples per forward pass
  torch::Device device = torch::kCPU;
  int top_k = 0;                       // k of top_k_accuracy; 0 = metrics::default_top_k(classes)
  std::function<void(uint64_t scored)> on_progress;  // called after each window of examples
};

// Scores every example of `split` (a split of `task`) with `opened`, which was opened with the
// split's dataset so that its fit maps the dataset's class ids onto the model's, and returns the
// metrics with each example's outcome (Evaluation::outcomes). Throws DataError for a class id
// outside the dataset's labels.
metrics::Evaluation evaluate_split(OpenedModel& opened, const data::DatasetSplit& split, data::Task task,
                                   const SplitEvaluationOptions& options);

}  // namespace recmodel::model
