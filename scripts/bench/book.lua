-- wrk: POST /book for a different seat on every request.
--   wrk -s book.lua URL -- EVENT_ID SEATS_PER_ROW
-- Thread t of n books seats t, t+n, t+2n, ... of an event whose rows are
-- A..Z, AA..ZZ with SEATS_PER_ROW seats each (as POST /admin/events makes them).

local next_thread = 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end

local event_id, per_row, threads
local counter = 0
local failures = 0

function init(args)
  event_id = tonumber(args[1])
  per_row = tonumber(args[2])
  threads = tonumber(args[3])
end

local function seat_name(index)
  local row = math.floor(index / per_row)
  local seat = index % per_row + 1
  local name
  if row < 26 then
    name = string.char(65 + row)
  else
    name = string.char(65 + math.floor(row / 26) - 1) .. string.char(65 + row % 26)
  end
  return name .. seat
end

function request()
  local index = thread_index + counter * threads
  counter = counter + 1
  local body = string.format('{"event_id":%d,"seat_number":"%s","customer_id":"wrk-%d"}', event_id, seat_name(index), index)
  return wrk.format("POST", "/book", { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  io.write(string.format("WRK_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors_status=%d errors_connect=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
