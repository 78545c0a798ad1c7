-- wrk script: rotate through pre-signed requests, count answers per status code, keep the
-- event ids of 2xx answers, and print one JSON line in done().
--
--   wrk -t1 -c64 -d20s --latency -s bench/wrk.lua URL -- REQUESTS_FILE IDS_FILE WRAP
--
-- REQUESTS_FILE: per request, its length on a line, then the raw HTTP/1.1 request bytes.
-- IDS_FILE: where event ids of 2xx answers go, one a line ("-" for none).
-- WRAP: "1" rotates forever (the ceiling, which has no dedupe); "0" stops the thread once
-- every request was sent once, so the gateway never sees a duplicate.

local requests = {}
local index = 0
local wrap = false
local ids = nil
counts = {}
duplicates = 0
exhausted = 0
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local f = assert(io.open(args[1], "rb"))
   while true do
      local line = f:read("*l")
      if not line then break end
      requests[#requests + 1] = f:read(tonumber(line))
   end
   f:close()
   if args[2] ~= nil and args[2] ~= "-" then
      ids = assert(io.open(args[2], "w"))
   end
   wrap = args[3] == "1"
end

function request()
   index = index + 1
   if index > #requests then
      if not wrap then
         exhausted = 1
         wrk.thread:stop()
         index = #requests
      else
         index = 1
      end
   end
   return requests[index]
end

function response(status, headers, body)
   local key = tostring(status)
   counts[key] = (counts[key] or 0) + 1
   if status >= 200 and status < 300 and body then
      if string.find(body, '"duplicate"', 1, true) then
         duplicates = duplicates + 1
      end
      if ids then
         local id = string.match(body, '"event_id":"(evt_[0-9a-f]+)"')
         if id then ids:write(id, "\n") end
      end
   end
end

function done(summary, latency, requests)
   local total = {}
   local dup, exh = 0, 0
   for _, thread in ipairs(threads) do
      for k, v in pairs(thread:get("counts")) do total[k] = (total[k] or 0) + v end
      dup = dup + thread:get("duplicates")
      exh = math.max(exh, thread:get("exhausted"))
   end
   local parts = {}
   for k, v in pairs(total) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"status":{%s},"duplicates":%d,' ..
      '"exhausted":%s,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p99.9":%d}}\n',
      summary.requests, summary.duration, summary.bytes, table.concat(parts, ","), dup,
      exh == 1 and "true" or "false", e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
