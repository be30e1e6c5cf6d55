-- TFTP benchmark (issues 5 and 6): 100 MB over loopback, every client and
-- server side by side in one run, MB/s and ratios.  Run by bench/run_tftp.sh.
-- Every command is bounded by `timeout`; every transfer is checked with cmp.
local env = require "spec.support.tftp_env"
local lnet = require "lnet"

local SIZE = tonumber(os.getenv("TFTP_BENCH_MB") or "100") * 1024 * 1024
local ROOT = env.ROOT
local q = env.quote
local LUA = env.proc.luaenv() .. "lua5.4 " .. ROOT .. "/examples/tftp.lua"

-- Files live on tmpfs when there is one (TFTP_BENCH_DIR=/tmp for the disk):
-- the same for every client and server, and the ratios then do not depend on
-- whatever filesystem /tmp happens to be on the machine at hand.
local base = os.getenv("TFTP_BENCH_DIR")
if not base then
  local probe = io.open("/dev/shm/.lnet-probe", "w")
  if probe then probe:close(); os.remove("/dev/shm/.lnet-probe"); base = "/dev/shm" end
end
local dir = env.tmpdir(base)
local out = env.tmpdir(base)
env.bigfile(dir .. "/big", SIZE)

local servers = {}
local function cleanup()
  for _, s in pairs(servers) do s.stop() end
  env.rmdir(dir)
  env.rmdir(out)
end

local REPS = tonumber(os.getenv("TFTP_BENCH_REPS") or "1")

-- Time one client command once; returns MB/s or nil (failed / wrong bytes).
local function once(cmd)
  os.remove(out .. "/got")
  local t0 = lnet.gettime()
  local code = env.run((cmd:find("^LUA_PATH") and "" or env.NATIVE) .. "timeout 120 " .. cmd)
  local dt = lnet.gettime() - t0
  if code ~= 0 or not env.same_files(dir .. "/big", out .. "/got") then return nil end
  return SIZE / 1048576 / dt
end

-- The median of TFTP_BENCH_REPS runs (nil if any run failed).
local function timed(cmd)
  local r = {}
  for i = 1, REPS do
    r[i] = once(cmd)
    if not r[i] then return nil end
  end
  table.sort(r)
  return r[(REPS + 1) // 2]
end

local clients = {
  lnet = function(port, b, w)
    return ("%s get 127.0.0.1:%d big %s --dally 0 %s %s"):format(LUA, port, q(out .. "/got"),
      b ~= 512 and ("--blksize " .. b) or "", w and ("--windowsize " .. w) or "")
  end,
  ["tftp-hpa"] = function(port, b, w)
    if b ~= 512 or w then return nil end
    return ("tftp 127.0.0.1 %d -m octet -c get big %s"):format(port, q(out .. "/got"))
  end,
  atftp = function(port, b, w)
    return ("atftp %s %s -g -r big -l %s 127.0.0.1 %d"):format(
      b ~= 512 and ("--option 'blksize %d'"):format(b) or "",
      w and ("--option 'windowsize %d'"):format(w) or "", q(out .. "/got"), port)
  end,
  curl = function(port, b, w)
    if w then return nil end
    return ("curl -sS --tftp-blksize %d -o %s tftp://127.0.0.1:%d/big"):format(b, q(out .. "/got"), port)
  end,
  busybox = function(port, b, w)
    if w then return nil end
    return ("busybox tftp -b %d -g -r big -l %s 127.0.0.1 %d"):format(b, q(out .. "/got"), port)
  end,
}

local function fmt(v) return v and ("%7.1f"):format(v) or "   fail" end
local function ratio(a, b)
  if not a or not b then return "   -  " end
  return ("%5.2fx"):format(a / b)
end

local ok, err = pcall(function()
  servers.hpa = env.hpa(dir)
  servers.atftpd = env.atftpd(dir)
  servers.lnet = env.lnetd(dir, { args = "--blksize-max 65464 --windowsize-max 64" })

  print(("TFTP benchmark: %d MB over loopback, files in %s, median of %d run(s) per cell,"
    .. " MB/s (wall time of the client process)\n"):format(SIZE // 1048576, base or "/tmp", REPS))

  -- Issue 5: clients against tftpd-hpa
  print("## Issue 5: clients downloading from tftpd-hpa")
  print("| blksize | lnet | tftp-hpa | atftp | curl | busybox | lnet / best other |")
  print("|---|---|---|---|---|---|---|")
  local best_anchor = { v = 0 }
  for _, b in ipairs { 512, 1428, 8192, 65464 } do
    local r = {}
    for _, name in ipairs { "lnet", "tftp-hpa", "atftp", "curl", "busybox" } do
      local cmd = clients[name](servers.hpa.port, b)
      r[name] = cmd and timed(cmd) or false
      if name ~= "lnet" and r[name] and r[name] > best_anchor.v then
        best_anchor = { v = r[name], what = name .. " <- tftpd-hpa @" .. b }
      end
    end
    local best
    for name, v in pairs(r) do if name ~= "lnet" and v and (not best or v > best) then best = v end end
    local function cell(v) return v == false and "  n/a" or fmt(v) end
    print(("| %d | %s | %s | %s | %s | %s | %s |"):format(b, cell(r.lnet), cell(r["tftp-hpa"]),
      cell(r.atftp), cell(r.curl), cell(r.busybox), ratio(r.lnet, best)))
  end

  print("\n## Issue 5: windowsize against atftpd (lnet vs atftp, same options)")
  print("| blksize | windowsize | lnet | atftp | ratio |")
  print("|---|---|---|---|---|")
  for _, b in ipairs { 512, 8192 } do
    for _, w in ipairs { 8, 16 } do
      local l = timed(clients.lnet(servers.atftpd.port, b, w))
      local a = timed(clients.atftp(servers.atftpd.port, b, w))
      if a and a > best_anchor.v then
        best_anchor = { v = a, what = "atftp <- atftpd @" .. b .. " w" .. w }
      end
      print(("| %d | %d | %s | %s | %s |"):format(b, w, fmt(l), fmt(a), ratio(l, a)))
    end
  end

  print("\n## Issue 6: the same client served by lnet's server and by tftpd-hpa")
  print("| client | blksize | lnet server | tftpd-hpa | ratio |")
  print("|---|---|---|---|---|")
  local rows = { { "tftp-hpa", 512 } }
  for _, b in ipairs { 1428, 8192, 65464 } do
    rows[#rows + 1] = { "atftp", b }
    rows[#rows + 1] = { "curl", b }
  end
  for _, row in ipairs(rows) do
    local l = timed(clients[row[1]](servers.lnet.port, row[2]))
    local h = timed(clients[row[1]](servers.hpa.port, row[2]))
    if h and h > best_anchor.v then
      best_anchor = { v = h, what = row[1] .. " <- tftpd-hpa @" .. row[2] }
    end
    print(("| %s | %d | %s | %s | %s |"):format(row[1], row[2], fmt(l), fmt(h), ratio(l, h)))
  end

  print("\n## Issue 6: atftp with windowsize 8, lnet's server vs atftpd")
  print("| blksize | lnet server | atftpd | ratio |")
  print("|---|---|---|---|")
  for _, b in ipairs { 512, 8192 } do
    local l = timed(clients.atftp(servers.lnet.port, b, 8))
    local a = timed(clients.atftp(servers.atftpd.port, b, 8))
    if a and a > best_anchor.v then best_anchor = { v = a, what = "atftp <- atftpd @" .. b .. " w8" } end
    print(("| %d | %s | %s | %s |"):format(b, fmt(l), fmt(a), ratio(l, a)))
  end

  print("\n## Issue 6: lnet client <-> lnet server vs the best anchor pair")
  local ll = timed(clients.lnet(servers.lnet.port, 65464, 16))
  print("| pair | MB/s | ratio to best anchor |")
  print("|---|---|---|")
  print(("| lnet <- lnet, blksize 65464, windowsize 16 | %s | %s (target 2.00x) |"):format(fmt(ll),
    ratio(ll, best_anchor.v)))
  print(("| best anchor: %s | %s | 1.00x |"):format(tostring(best_anchor.what), fmt(best_anchor.v)))
end)
cleanup()
if not ok then
  io.stderr:write("bench failed: ", tostring(err), "\n")
  os.exit(1)
end
