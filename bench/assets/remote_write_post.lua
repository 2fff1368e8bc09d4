-- wrk script: POST pre-built remote-write bodies (snappy block-compressed protobuf) in rotation,
-- with the headers Prometheus sends. Used by bench/forwarder_bench.py.
--
-- Environment (read at load time, in every wrk thread):
--   RW_BODY_DIR    directory holding body-1.bin .. body-N.bin
--   RW_BODY_COUNT  N
--   RW_DELAY_MS    optional pacing: milliseconds each connection waits between requests
local dir = assert(os.getenv("RW_BODY_DIR"), "RW_BODY_DIR not set")
local count = tonumber(os.getenv("RW_BODY_COUNT") or "1")
local delay_ms = tonumber(os.getenv("RW_DELAY_MS") or "0")

local headers = {
  ["Content-Type"] = "application/x-protobuf",
  ["Content-Encoding"] = "snappy",
  ["X-Prometheus-Remote-Write-Version"] = "0.1.0",
  ["User-Agent"] = "Prometheus/2.42.0+ds",
}
local bodies = {}
for i = 1, count do
  local f = assert(io.open(dir .. "/body-" .. i .. ".bin", "rb"))
  bodies[i] = f:read("*all")
  f:close()
end

-- Requests are formatted in init(): wrk sets the Host header and path only after loading the script.
local requests = {}
local index = 0
function init(args)
  for i = 1, count do
    local h = {}
    for k, v in pairs(headers) do h[k] = v end
    requests[i] = wrk.format("POST", wrk.path, h, bodies[i])
  end
  index = math.random(count) - 1
end

function request()
  index = (index % count) + 1
  return requests[index]
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end
