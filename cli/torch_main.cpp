// recmodel-torch: the same front end with the model commands (libtorch) registered. `recmodel`
// hands these commands to it, so users only ever type `recmodel`.
#include "cli/app.h"
#include "cli/system_info.h"
#include "commands/drift.h"
#include "commands/evaluate.h"
#include "commands/export.h"
#include "commands/init.h"
#include "commands/pipeline.h"
#include "commands/predict.h"
#include "commands/pretrain.h"
#include "commands/quantize.h"
#include "commands/report.h"
#include "commands/serve.h"
#include "commands/train.h"

int main(int argc, char** argv) {
  recmodel::tune_allocator();
  recmodel::ModelRuntime runtime;
  runtime.commands = {{"init", recmodel::register_init},         {"pretrain", recmodel::register_pretrain},
                      {"train", recmodel::register_train},
                      {"evaluate", recmodel::register_evaluate}, {"predict", recmodel::register_predict},
                      {"quantize", recmodel::register_quantize}, {"export", recmodel::register_export},
                      {"serve", recmodel::register_serve},       {"pipeline", recmodel::register_pipeline},
                      {"drift", recmodel::register_drift},       {"report", recmodel::register_report}};
  runtime.version_info = recmodel::version_info;
  runtime.use_threads = recmodel::use_threads;
  return recmodel::run_cli(argc, argv, &runtime);
}
