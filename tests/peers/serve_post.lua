-- wrk script for `recmodel serve` (tests/peers/serve_swap.test.sh, bench/serve_throughput.sh).
--
--   wrk -t1 -c4 -d10s -s tests/peers/serve_post.lua http://127.0.0.1:PORT
--
-- Posts {"inputs": TEXT} to SERVE_PATH (default /predict). TEXT cycles over the non-empty lines of
-- the file SERVE_TEXTS (read once per wrk thread, in init), else it is SERVE_TEXT (default a short
-- sentence). Each thread starts at another offset of the file, so threads do not post in lockstep.
-- With SERVE_TRACK=0 no response() callback is installed (wrk then skips parsing headers in Lua:
-- the benchmark's setting); else every response is checked: non-2xx statuses are counted and the
-- x-model-version values seen are collected.
-- done() prints one JSON line:
--   {"requests": N, "duration_s": S, "requests_per_s": R, "non2xx": K, "versions": ["m/1", ...],
--    "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
--    "latency_ms": {"p50": ..., "p90": ..., "p99": ..., "max": ..., "mean": ...}}
-- (non2xx and versions are null with SERVE_TRACK=0; wrk's errors.status counts statuses >= 400.)

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  table.insert(threads, thread)
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == '\\' then return '\\\\' end
    return string.format('\\u%04x', c:byte())
  end) .. '"'
end

local bodies = {}
local next_body = 1
local path = os.getenv("SERVE_PATH") or "/predict"
local track = os.getenv("SERVE_TRACK") ~= "0"

-- Globals: read back by done() through thread:get.
non2xx = 0
versions = ""

function init(args)
  local file = os.getenv("SERVE_TEXTS")
  if file and file ~= "" then
    for line in io.lines(file) do
      if line:match("%S") then table.insert(bodies, '{"inputs": ' .. json_string(line) .. '}') end
    end
  end
  if #bodies == 0 then
    table.insert(bodies, '{"inputs": ' .. json_string(os.getenv("SERVE_TEXT") or "where is my refund") .. '}')
  end
  next_body = ((thread_index or 1) - 1) * 9973 % #bodies + 1
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format("POST", path, nil, body)
end

if track then
  local seen = {}
  function response(status, headers, body)
    if status < 200 or status > 299 then non2xx = non2xx + 1 end
    local v = headers["x-model-version"] or headers["X-Model-Version"]
    if v and not seen[v] then
      seen[v] = true
      versions = versions == "" and v or (versions .. "," .. v)
    end
  end
end

function done(summary, latency, requests)
  local bad, all_versions, seen = 0, {}, {}
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    for v in string.gmatch(t:get("versions") or "", "[^,]+") do
      if not seen[v] then seen[v] = true; table.insert(all_versions, json_string(v)) end
    end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "duration_s": %.3f, "requests_per_s": %.1f, "non2xx": %s, "versions": %s, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f, "mean": %.3f}}\n',
    summary.requests, seconds, summary.requests / seconds,
    track and tostring(bad) or "null", track and ('[' .. table.concat(all_versions, ", ") .. ']') or "null",
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
