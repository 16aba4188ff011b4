// The job environment torchrun, a PyTorchJob and `train --nproc-per-node` set, as read_world sees it.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "common/error.h"
#include "distributed/world.h"

using recmodel::distributed::read_world;

namespace {

auto environment(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const char* name) -> const char* {
    auto it = values.find(name);
    return it == values.end() ? nullptr : it->second.c_str();
  };
}

std::string refusal(std::map<std::string, std::string> values) {
  try {
    read_world(environment(std::move(values)));
  } catch (const recmodel::UsageError& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("read_world: no WORLD_SIZE is one process, whatever else is set") {
  auto world = read_world(environment({{"MASTER_ADDR", "10.0.0.1"}}));
  CHECK(world.world_size == 1);
  CHECK_FALSE(world.distributed());
  CHECK(world.is_main());
}

TEST_CASE("read_world: torchrun's agent-store workers and a PyTorchJob's pods") {
  auto agent = read_world(environment({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                                       {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29500"},
                                       {"TORCHELASTIC_RESTART_COUNT", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}}));
  CHECK(agent.rank == 3);
  CHECK(agent.local_rank == 1);
  CHECK(agent.local_world_size == 2);
  CHECK(agent.restart_count == 2);
  CHECK(agent.use_agent_store);
  CHECK(agent.master() == "node0:29500");
  auto job = read_world(environment({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "job-master-0"},
                                     {"MASTER_PORT", "23456"}, {"TORCHELASTIC_USE_AGENT_STORE", "False"}}));
  CHECK(job.is_main());
  CHECK_FALSE(job.use_agent_store);
  CHECK(job.local_world_size == 1);
}

TEST_CASE("read_world: malformed or contradicting values name the variable") {
  CHECK(refusal({{"WORLD_SIZE", "two"}}) == "environment variable WORLD_SIZE='two' is not a whole number in [1, 1048576]");
  CHECK(refusal({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}) ==
        "environment variable RANK='2' is not a whole number in [0, 1]");
  CHECK(refusal({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}).find("RANK is not") !=
        std::string::npos);
  CHECK(refusal({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_PORT", "1"}}).find("needs MASTER_ADDR") != std::string::npos);
  CHECK(refusal({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}) ==
        "environment variable MASTER_PORT='70000' is not a whole number in [1, 65535]");
}
