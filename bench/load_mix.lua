-- wrk's script for bench/load_bench.py (run it through that file, which logs the clients in).
--
-- One wrk thread per client, each with one connection (wrk -t N -c N), so that a response is
-- always the answer to the thread's last request: its kind and latency are known exactly. Each
-- thread is one logged-in client (its own session and CSRF cookies, from LOAD_CLIENTS) and draws
-- its next request from the mix (LOAD_MIX, weights of: "list", the POP accounts' list, page 1;
-- "paged", a page drawn among all the others; "index", an index letter; "search"; "create", the
-- creation of an account, the form's POST with its CSRF token); after a creation it opens the
-- list (page 1), as the browser does after the redirect.
-- At the end every thread's "kind status microseconds" lines are written to LOAD_OUT.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } load_timespec;
  int clock_gettime(int clock, load_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local now_buffer = ffi.new("load_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_buffer)
  return tonumber(now_buffer.tv_sec) * 1000000 + tonumber(now_buffer.tv_nsec) / 1000
end

local function lines_of(path)
  local lines = {}
  for line in io.lines(path) do lines[#lines + 1] = line end
  return lines
end

-- The main state: one client per thread, in the order the threads are made.
local clients = nil
local threads = {}

function setup(thread)
  clients = clients or lines_of(os.getenv("LOAD_CLIENTS"))
  local n = #threads + 1
  local cookie, token = clients[(n - 1) % #clients + 1]:match("^(%S+) (%S+)$")
  thread:set("number", n)
  thread:set("cookie", cookie)
  thread:set("token", token)
  threads[n] = thread
end

-- Each thread's state.
local list_path, create_path, pages, mix, password
local started, current, made, after_create = 0, nil, 0, false
records = {}  -- global: done() reads it through thread:get

local function parse_mix(text)  -- "list=85,search=14,create=1" -> cumulative weights
  local cumulative, total = {}, 0
  for kind, weight in text:gmatch("(%a+)=(%d+)") do
    total = total + tonumber(weight)
    cumulative[#cumulative + 1] = {kind, total}
  end
  return cumulative, total
end

function init(args)
  list_path, create_path = os.getenv("LOAD_LIST_PATH"), os.getenv("LOAD_CREATE_PATH")
  pages = tonumber(os.getenv("LOAD_PAGES"))
  password = os.getenv("LOAD_PASSWORD")
  mix = {parse_mix(os.getenv("LOAD_MIX"))}
  math.randomseed(number * 7919 + tonumber(os.getenv("LOAD_SEED") or "1"))
  wrk.headers["Cookie"] = cookie
  wrk.headers["Accept-Language"] = "fr"
end

local LETTERS = "0123456789abcdefghijklmnopqrstuvwxyz"

local function pick()
  local draw = math.random(mix[2])
  for _, entry in ipairs(mix[1]) do
    if draw <= entry[2] then return entry[1] end
  end
end

local function list_request(kind)
  if kind == "paged" then return list_path .. "?page=" .. math.random(2, pages) end
  if kind == "index" then
    local i = math.random(#LETTERS)
    return list_path .. "?index=" .. LETTERS:sub(i, i)
  end
  return list_path
end

local function search_request()
  -- "u04242" finds 10 accounts, "numero 777" about 111, "utilisateur 9" thousands (paged)
  local shape = math.random(3)
  local term
  if shape == 1 then term = string.format("u0%04d", math.random(0, 9999))
  elseif shape == 2 then term = "numero+" .. math.random(100, 999)
  else term = "utilisateur+" .. math.random(1, 9) end
  return list_path .. "?q=" .. term
end

local function create_request()
  made = made + 1
  local name = string.format("load%02d%s%d", number, string.format("%x", math.random(0, 0xffffff)), made)
  local body = "csrfmiddlewaretoken=" .. token .. "&local_part=" .. name .. "&real_name=Compte+de+charge"
               .. "&password1=" .. password .. "&password2=" .. password .. "&quota_mb="
  return wrk.format("POST", create_path, {  -- these headers replace wrk.headers: the cookies again
    ["Cookie"] = cookie, ["Accept-Language"] = "fr", ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Referer"] = "http://" .. wrk.host .. ":" .. wrk.port .. create_path,
  }, body)
end

function request()
  if after_create then
    current, after_create = "list", false
  else
    current = pick()
  end
  started = now_us()
  if current == "create" then return create_request() end
  if current == "search" then return wrk.format("GET", search_request()) end
  return wrk.format("GET", list_request(current))
end

function response(status, headers, body)
  local elapsed = now_us() - started
  records[#records + 1] = current .. " " .. status .. " " .. math.floor(elapsed)
  if current == "create" and status == 302 then after_create = true end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("LOAD_OUT"), "w"))
  for _, thread in ipairs(threads) do
    local lines = thread:get("records")
    for _, line in ipairs(lines) do out:write(line, "\n") end
  end
  out:close()
end
