-- wrk script for the contact form: every request is a new submission (its own submission_id),
-- from a visitor whose address is used twice (a new customer, then a returning one).
-- Usage: wrk ... -s bench/form.lua http://127.0.0.1:PORT -- /contact/SLUG
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  path = args[1] or "/contact"
  counter = 0
  accepted = 0
  refused = 0
  last_refusal = 0
end

function request()
  counter = counter + 1
  -- 32 hex digits, unique per thread and request: the form's submission_id.
  local sid = string.format("%08x%08x%016x", tid, 0x0be4c, counter)
  local visitor = string.format("visitor%d-%d", tid, math.floor((counter + 1) / 2))
  local body = "name=Visitor+" .. tid .. "+" .. counter ..
    "&email=" .. visitor .. "%40example.org" ..
    "&subject=Question+about+order+" .. counter ..
    "&message=Hello%2C+my+order+" .. counter .. "+has+not+arrived+yet.+Could+you+check%3F" ..
    "&website=&submission_id=" .. sid
  return wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function response(status, headers, body)
  if status == 200 then
    accepted = accepted + 1
  else
    refused = refused + 1
    last_refusal = status
  end
end

function done(summary, latency, requests)
  local a, r, last = 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("accepted")
    r = r + thread:get("refused")
    if thread:get("last_refusal") ~= 0 then last = thread:get("last_refusal") end
  end
  io.write(string.format("BENCH_ACCEPTED %d\nBENCH_REFUSED %d\nBENCH_LAST_REFUSAL %d\n", a, r, last))
end
