-- wrk script for bench/replay.py: replays pre-built requests in turn and prints a JSON
-- summary. The requests file has one request a line: method, path, then header lines and
-- the body, each hex-encoded, separated by tabs (the body last).
local requests = {}
local turn = 0

local function unhex(text)
  return (text:gsub("..", function(pair) return string.char(tonumber(pair, 16)) end))
end

init = function(args)
  for line in io.lines(args[1]) do
    local fields = {}
    for field in line:gmatch("[^\t]+") do table.insert(fields, field) end
    local headers = {}
    for i = 3, #fields - 1 do
      local name, value = unhex(fields[i]):match("^([^:]+): (.*)$")
      headers[name] = value
    end
    table.insert(requests, wrk.format(fields[1], fields[2], headers, unhex(fields[#fields])))
  end
  turn = math.random(#requests)
end

request = function()
  turn = turn % #requests + 1
  return requests[turn]
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
