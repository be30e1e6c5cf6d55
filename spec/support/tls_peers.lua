--- Real TLS peers for the interop specs: the Python `ssl` server and client
-- (spec/support/tls_server.py, tls_client.py) and `openssl s_server` /
-- `openssl s_client`, started with the right flags, bounded, stopped by pid.
--
--   local peers = require "spec.support.tls_peers"
--   local c = require("spec.support.tls_certs").make()
--   after_each(peers.stop_all)
--
--   local s = peers.python_server { cert = c.server_cert, key = c.server_key, mode = "echo",
--                                   alpn = { "h2", "http/1.1" } }   -- waits for "ready PORT"
--   -- s.port; s:expect("sni localhost"); s:output()
--   local cl = peers.python_client { port = s.port, cafile = c.ca, servername = "localhost",
--                                    mode = "echo", bytes = 1000 }
--   local status, out = cl:finish()          -- waits (bounded) for it to end
--
--   local o = peers.s_server { cert = c.server_cert, key = c.server_key, www = true }
--   local sc = peers.s_client { port = o.port, cafile = c.ca, servername = "localhost",
--                               stdin = "GET / HTTP/1.0\r\n\r\n" }
--
-- Options.  python_server / python_client: each key becomes the program's
-- long option (`close_after = 10` -> `--close-after 10`, `tls12 = true` ->
-- `--tls12`, a list -> comma-joined); see the programs' docstrings.
-- s_server / s_client: each key becomes an openssl option as spelled
-- (`no_tls1_3 = true` -> `-no_tls1_3`, `Verify = 1` -> `-Verify 1`,
-- `alpn = {"h2"}` -> `-alpn h2`), plus these conveniences:
--   port (s_client: required; s_server: 0 = pick one, the default),
--   host (default 127.0.0.1; "::1" works), cafile (-> -CAfile),
--   tls1 = true also sets `-cipher DEFAULT@SECLEVEL=0` (OpenSSL 3 refuses
--     TLS 1.0 at its default security level: see TLS_NOTES.md),
--   s_server: naccept (default 1: it exits after one connection),
--   s_server: dir (run in that directory: `-WWW` serves files relative to it),
--   s_client: verify (default true when cafile is given: -verify_return_error),
--     ign_eof (default true: keep reading after stdin ends, until the
--     server closes), stdin (a string sent to the server).
--   extra: a list of raw arguments appended as they are.
-- Every program also takes (none of them is passed on as an option):
--   stdin (a string: its standard input), stdin_file (a path: read from that
--   file instead, e.g. 50 MB for s_client to send), input = true (a FIFO the
--   spec writes to as it goes: p:write(s), p:close_input(); for s_client's
--   command letters, which count only at the start of a read).
-- Every program runs under `timeout` (opts.limit seconds, default 30) and
-- is stopped by pid in stop_all (TERM to `timeout`, which passes it on to
-- its process group, then KILL).
--
-- Process objects (from proc.spawn) have: pid, port (servers), output(),
-- expect(text [, timeout]) -> ok, output; must(text [, timeout]) -> output
-- (raises an error showing the output when text does not come);
-- finish([timeout]) -> exit status (nil if it did not end), output; stop();
-- with input = true also write(s) and close_input() (the program sees EOF).
--
-- peers.missing() -> nil, or the name of a missing program (python3, openssl)
-- for `pending`; under CI=true a missing program is an error (proc.need).
local proc = require "spec.support.proc"

local M = {}

local ROOT = os.getenv("LNET_ROOT") or "."
M.SUPPORT = ROOT .. "/spec/support"
M.WAIT = 10 -- seconds: the bound on a single wait
local quote = proc.quote

local running = {}

local Peer = setmetatable({}, { __index = proc })
Peer.__index = Peer

--- Wait for the program to end (at most `timeout` s); its exit status and output.
function Peer:finish(timeout)
  local ok, out = self:expect("[exit ", timeout or M.WAIT)
  if not ok then return nil, out end
  return tonumber(out:match("%[exit (%d+)%]")), out
end

--- (input = true) Write `s` to the program's standard input, at once.
function Peer:write(s)
  assert(self.input, "write: the peer was not started with input = true")
  assert(self.input:write(s))
end

--- (input = true) Close the program's standard input: it reads EOF.
function Peer:close_input()
  if self.input then self.input:close() end
  self.input = nil
end

--- Stop the program (TERM, then KILL, by pid) and remove its files.
function Peer:stop()
  self:close_input()
  proc.stop(self)
  if self.fifo then os.remove(self.fifo) end
end

--- Wait for `text` in the output; raise an error with the output if it does not come.
function Peer:must(text, timeout)
  local ok, out = self:expect(text, timeout or M.WAIT)
  if not ok then error(("expected %q in the peer's output:\n%s"):format(text, out), 2) end
  return out
end

-- Start a shell command line under `timeout`; the command's exit status is
-- appended to the output as "[exit N]" (N >= 124: killed by timeout).
-- opts.stdin_file / opts.input redirect the program's standard input inside
-- `sh -c`.  The FIFO is opened here read-write (that never blocks; the
-- program's open for reading waits for it) after the spawn: Lua's io.open
-- sets no O_CLOEXEC, and a program that inherited this end would never see
-- EOF.  (Programs started later while it is open inherit it too: then EOF
-- comes when they are gone as well.)
local function start(cmd, opts)
  local limit = opts.limit or 30
  local fifo
  if opts.input then
    fifo = os.tmpname()
    os.remove(fifo)
    assert(os.execute("mkfifo -m 600 " .. quote(fifo)), "mkfifo failed")
    cmd = cmd .. " <" .. quote(fifo)
  elseif opts.stdin_file then
    cmd = cmd .. " <" .. quote(opts.stdin_file)
  end
  local line = ("%s; echo \"[exit $?]\""):format(cmd)
  local p = proc.spawn(("timeout %d sh -c %s"):format(limit, quote(line)), { stdin = opts.stdin })
  if fifo then
    p.fifo = fifo
    p.input = assert(io.open(fifo, "r+"))
    p.input:setvbuf("no")
  end
  setmetatable(p, Peer)
  running[#running + 1] = p
  return p
end

function M.missing()
  for _, prog in ipairs { "python3", "openssl", "timeout" } do
    if not proc.need(prog) then return prog end
  end
  return nil
end

--- Stop every peer started since the last stop_all (call it in after_each).
function M.stop_all()
  for _, p in ipairs(running) do p:stop() end
  running = {}
end

local function longopts(opts, skip)
  local args = {}
  local keys = {}
  for k in pairs(opts) do
    if not skip[k] then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = opts[k]
    local flag = "--" .. k:gsub("_", "-")
    if v == true then
      args[#args + 1] = flag
    elseif v ~= false then
      if type(v) == "table" then v = table.concat(v, ",") end
      args[#args + 1] = flag .. " " .. quote(v)
    end
  end
  return table.concat(args, " ")
end

local NOT_AN_OPTION = { limit = true, stdin = true, extra = true, stdin_file = true, input = true }

local function extra(opts)
  local t = {}
  for _, a in ipairs(opts.extra or {}) do t[#t + 1] = quote(a) end
  return table.concat(t, " ")
end

--- The Python ssl server (tls_server.py); waits for its "ready PORT" line.
function M.python_server(opts)
  opts = opts or {}
  local cmd = ("python3 -u %s %s %s"):format(quote(M.SUPPORT .. "/tls_server.py"),
    longopts(opts, NOT_AN_OPTION), extra(opts))
  local p = start(cmd, opts)
  local ok, out = p:expect("ready ", M.WAIT)
  local port = ok and out:match("ready (%d+)")
  if not port then
    p:stop()
    error("tls_server.py did not start:\n" .. out, 2)
  end
  p.port = tonumber(port)
  return p
end

--- The Python ssl client (tls_client.py); returns at once (see finish()).
function M.python_client(opts)
  opts = opts or {}
  local cmd = ("python3 -u %s %s %s"):format(quote(M.SUPPORT .. "/tls_client.py"),
    longopts(opts, NOT_AN_OPTION), extra(opts))
  return start(cmd, opts)
end

local RENAME = { cafile = "CAfile" }

local function shortopts(opts, skip)
  local args = {}
  local keys = {}
  for k in pairs(opts) do
    if not skip[k] then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = opts[k]
    local flag = "-" .. (RENAME[k] or k)
    if v == true then
      args[#args + 1] = flag
    elseif v ~= false then
      if type(v) == "table" then v = table.concat(v, ",") end
      args[#args + 1] = flag .. " " .. quote(v)
    end
  end
  return table.concat(args, " ")
end

local function hostport(host, port)
  host = host or "127.0.0.1"
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  return host .. ":" .. port
end

local function tls10(opts)
  if opts.tls1 and not opts.cipher then
    opts.cipher = "DEFAULT@SECLEVEL=0"
  end
end

--- `openssl s_server`; waits for its "ACCEPT host:PORT" line.  Without www,
-- rev or stdin it serves one connection that reads what the client sends
-- (printed in the output) until stdin ends: with no stdin that is at once,
-- so give it `stdin`, or use www = true (HTTP status page for "GET /") or
-- rev = true (echoes each line reversed; the line "CLOSE" ends the
-- connection with close_notify).  Do not pass quiet/brief: both hide the
-- ACCEPT line this waits for.
function M.s_server(opts)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  tls10(o)
  if o.naccept == nil then o.naccept = 1 end
  local skip = { port = true, host = true, dir = true }
  for k in pairs(NOT_AN_OPTION) do skip[k] = true end
  local cmd = ("openssl s_server -accept %s %s %s"):format(hostport(o.host, o.port or 0),
    shortopts(o, skip), extra(o))
  if o.dir then cmd = ("cd %s && %s"):format(quote(o.dir), cmd) end
  local p = start(cmd, opts)
  local ok, out = p:expect("ACCEPT", M.WAIT)
  local port = ok and out:match("ACCEPT [^\n]*:(%d+)")
  if not port and ok and o.port and o.port ~= 0 then port = o.port end
  if not port then
    p:stop()
    error("openssl s_server did not start:\n" .. out, 2)
  end
  p.port = tonumber(port)
  return p
end

--- `openssl s_client -connect host:port`; returns at once (see finish()).
function M.s_client(opts)
  opts = opts or {}
  assert(opts.port, "s_client: port needed")
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  tls10(o)
  if o.verify == nil then o.verify = o.cafile ~= nil end
  if o.verify then o.verify_return_error = true end
  if o.ign_eof == nil then o.ign_eof = true end
  local skip = { port = true, host = true, verify = true }
  for k in pairs(NOT_AN_OPTION) do skip[k] = true end
  local cmd = ("openssl s_client -connect %s %s %s"):format(hostport(o.host, o.port),
    shortopts(o, skip), extra(o))
  return start(cmd, opts)
end

--- A TLS 1.0-only `openssl s_server -www` (for "TLS 1.0 is refused").
function M.tls10_server(c, opts)
  local o = { cert = c.server_cert, key = c.server_key, www = true, tls1 = true }
  for k, v in pairs(opts or {}) do o[k] = v end
  return M.s_server(o)
end

return M
