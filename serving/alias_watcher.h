// Follows the registry references that can move (models:/NAME@ALIAS, models:/NAME/latest): every
// --poll seconds, or at once on SIGHUP (check_now), it asks the registry where each points; when
// one moved, the new version is loaded, verified and warmed in the background while the old one
// keeps serving, then swapped in. A version that fails is not swapped in and not retried until
// the reference moves again or a SIGHUP asks; the failure is logged once, in /info and in the
// metrics.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "serving/metrics.h"
#include "serving/model_set.h"
#include "serving/version_loader.h"

namespace recmodel::serving {

class AliasWatcher {
 public:
  // Starts the watching thread when some slot of `models` follows a reference. `poll` of 0 checks
  // only on check_now(). `log` gets serve's own lines (swaps, failures).
  AliasWatcher(ModelSet& models, const VersionLoader& loader, ServeMetrics& metrics,
               std::function<void(const std::string&)> log, std::chrono::milliseconds poll);
  ~AliasWatcher();
  AliasWatcher(const AliasWatcher&) = delete;
  AliasWatcher& operator=(const AliasWatcher&) = delete;

  // Checks every followed reference now, retrying versions that failed before.
  void check_now();
  // Stops the thread; a load in progress finishes first.
  void stop();

  // Checks slot `slot` once, on the caller's thread (the thread's loop, and tests).
  void check(size_t slot, bool retry_failed);

 private:
  void run();

  ModelSet& models_;
  const VersionLoader& loader_;
  ServeMetrics& metrics_;
  std::function<void(const std::string&)> log_;
  std::chrono::milliseconds poll_;
  std::vector<bool> registry_failing_;  // per slot: the last poll could not read the registry
  std::mutex mutex_;
  std::condition_variable wake_;
  bool check_requested_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace recmodel::serving
