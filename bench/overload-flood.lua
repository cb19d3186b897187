-- The flood of bench/overload.ts, run by wrk in its own process: every request
-- a PUT of a new key (flood-<thread>-<n>) with a ~100-byte JSON value. Each
-- thread counts its answers by class; done() prints one JSON line that the
-- bench reads: requests sent, answers 2xx, 503 overloaded, other, and wrk's
-- socket errors.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local n = 0
local body = '{"v":"' .. string.rep("x", 92) .. '"}'
local headers = { ["Content-Type"] = "application/json" }
ok, shed, other = 0, 0, 0

-- How many requests each write to a connection carries (HTTP/1.1 pipelining): the first script argument.
local depth = 1

function init(args)
  depth = tonumber(args[1] or "1") or 1
end

function request()
  local batch = {}
  for i = 1, depth do
    n = n + 1
    batch[i] = wrk.format("PUT", "/kv/flood-" .. tid .. "-" .. n, headers, body)
  end
  return table.concat(batch)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif status == 503 and body ~= nil and body:find('"overloaded"', 1, true) then
    shed = shed + 1
  else
    other = other + 1
  end
end

function done(summary)
  local o, s, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    s = s + t:get("shed")
    x = x + t:get("other")
  end
  local e = summary.errors
  io.write(string.format('FLOOD {"requests":%d,"durationUs":%d,"ok":%d,"shed":%d,"other":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, o, s, x, e.connect, e.read, e.write, e.timeout))
end
