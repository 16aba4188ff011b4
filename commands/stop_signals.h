// Ctrl-C and SIGTERM during training (train, pretrain): the first asks the loop to save a
// checkpoint and stop (training::Trainer::stop_requested), a second stops at once.
#pragma once

#include <csignal>

#include "training/trainer.h"

namespace recmodel {

// Restores the previous SIGINT/SIGTERM handlers when training ends.
class StopSignals {
 public:
  StopSignals() {
    training::Trainer::stop_requested() = false;
    previous_int_ = std::signal(SIGINT, handle);
    previous_term_ = std::signal(SIGTERM, handle);
  }
  ~StopSignals() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }

 private:
  static void handle(int signal) {
    // A second signal stops at once, as users expect from Ctrl-C pressed twice.
    if (training::Trainer::stop_requested().exchange(true)) {
      std::signal(signal, SIG_DFL);
      std::raise(signal);
    }
  }
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

}  // namespace recmodel
