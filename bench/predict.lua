-- wrk script for POST /predict: cycles through pre-built request bodies (one JSON document per line of the file
-- given after `--`), counts responses per HTTP status, and prints one machine-readable line at the end:
--   wrk -t2 -c64 -d10s --timeout 5s -s bench/predict.lua http://127.0.0.1:PORT/predict -- bodies.jsonl
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  reqs = {}
  local path = args[1]
  for line in io.lines(path) do
    if #line > 0 then
      reqs[#reqs + 1] = wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"}, line)
    end
  end
  if #reqs == 0 then error("no request bodies in " .. tostring(path)) end
  idx = (tid * 7919) % #reqs     -- threads start at different bodies
  statuses = {}
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then for k, v in pairs(s) do counts[k] = (counts[k] or 0) + v end end
  end
  local parts = {}
  for k, v in pairs(counts) do parts[#parts + 1] = string.format('"%d":%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p95":%d,"p99":%d,"p999":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max, latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(95), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ",")))
end
