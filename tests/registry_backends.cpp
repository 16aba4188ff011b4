#include "tests/registry_backends.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "registry/postgres.h"

namespace recmodel::testing {

namespace {

std::string fixture_script() { return std::string(RECMODEL_SOURCE_DIR) + "/tests/registry/pg_fixture.sh"; }

std::string shell(const std::string& command, int* status) {
  std::FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + command);
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  const int code = pclose(pipe);
  *status = WIFEXITED(code) ? WEXITSTATUS(code) : -1;
  return out;
}

PostgresServer start_server() {
  PostgresServer server;
  server.dir = (fs::temp_directory_path() / fmt::format("recmodel-pg-{}-{}", getpid(), std::rand() % 100000)).string();
  int status = -1;
  const std::string out =
      shell(fmt::format("OWNER_PID={} {} start {} 2>&1", getpid(), fixture_script(), server.dir), &status);
  if (status != 0) throw std::runtime_error("pg_fixture.sh start failed:\n" + out);
  std::map<std::string, std::string> env;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (size_t eq = line.find('='); eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  server.password = env.at("PG_PASSWORD");
  server.base_url = fmt::format("postgresql://{}@127.0.0.1:{}", env.at("PG_USER"), env.at("PG_PORT"));
  ::setenv("PGPASSWORD", server.password.c_str(), 1);
  return server;
}

}  // namespace

const PostgresServer& postgres_server() {
  static const PostgresServer server = start_server();
  return server;
}

std::string fresh_postgres_database() {
  static std::atomic<int> counter{0};
  const PostgresServer& server = postgres_server();
  const std::string name = fmt::format("registry_{}_{}", getpid(), ++counter);
  registry::PostgresDatabase admin(server.base_url + "/postgres", 10000);
  admin.exec("CREATE DATABASE " + name, "creating a test database");
  return server.base_url + "/" + name;
}

void kill_postgres() {
  int status = -1;
  const std::string out = shell(fmt::format("{} kill {} 2>&1", fixture_script(), postgres_server().dir), &status);
  if (status != 0) throw std::runtime_error("pg_fixture.sh kill failed:\n" + out);
}

void restart_postgres() {
  int status = -1;
  const std::string out = shell(fmt::format("{} restart {} 2>&1", fixture_script(), postgres_server().dir), &status);
  if (status != 0) throw std::runtime_error("pg_fixture.sh restart failed:\n" + out);
}

std::vector<std::string> fresh_registries(const TempDir& dir) {
  return {(dir / "registry.db").string(), fresh_postgres_database()};
}

}  // namespace recmodel::testing
